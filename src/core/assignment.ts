/**
 * Co-partitioned assignment (scale-out): partition p of every subscribed topic goes to the same
 * member. Candidates and feedback are both keyed by candidate id with the same partitioner, so
 * with equal partition counts the instance that pools a candidate also receives its feedback.
 */

/** Partitions per member per topic: `{ [memberId]: { [topic]: partitions } }`. */
export type Assignment = Record<string, Record<string, number[]>>;

/**
 * Assigns partition p of every topic to the (p mod n)-th member in sorted id order (every member
 * appears, possibly with nothing). Deterministic: every member computes the same assignment.
 */
export function coPartitionedAssignment(
  memberIds: readonly string[],
  partitionsByTopic: Readonly<Record<string, readonly number[]>>,
): Assignment {
  const members = [...new Set(memberIds)].sort();
  const out: Assignment = {};
  for (const m of members) out[m] = {};
  if (members.length === 0) return out;
  for (const [topic, partitions] of Object.entries(partitionsByTopic)) {
    for (const p of [...partitions].sort((a, b) => a - b)) {
      const member = members[p % members.length] as string;
      const mine = (out[member] as Record<string, number[]>)[topic] ?? [];
      mine.push(p);
      (out[member] as Record<string, number[]>)[topic] = mine;
    }
  }
  return out;
}

/** A member of the coordination group, with the member id under which it says it coordinates. */
export interface CoordinationMember {
  readonly memberId: string;
  /** The member id it held when it was last given the coordination partition; null if not. */
  readonly heldAs: string | null;
}

/**
 * Who gets the coordination partition (scale-out): the member that holds it and is still the
 * member it was when it got it, so that a healthy coordinator keeps its role through a rebalance
 * (a join, a restart, a woken instance); a member dropped from the group (its session expired)
 * rejoins under a new id and its old hold counts for nothing. With no such member, the first in
 * sorted id order. Deterministic; undefined only for an empty group.
 */
export function coordinationOwner(members: readonly CoordinationMember[]): string | undefined {
  const holders = members.filter((m) => m.heldAs === m.memberId).map((m) => m.memberId);
  return (holders.length > 0 ? holders : members.map((m) => m.memberId)).sort()[0];
}
