/**
 * The partition assignors of scale-out (kafkajs runs them on the group leader): the main group's,
 * which keeps partition p of candidates and of feedback together, and the coordination group's,
 * which keeps the coordination partition, and with it the coordinator role, with its holder.
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';
import { coPartitionedAssignment, coordinationOwner } from '../../core/assignment.js';

function encode(memberId: string, assignment: Record<string, number[]>) {
  return {
    memberId,
    memberAssignment: AssignerProtocol.MemberAssignment.encode({
      version: 0,
      assignment,
      userData: Buffer.alloc(0),
    }),
  };
}

/** The main group's assignor: partition p of candidates and of feedback go to one member. */
export function coPartitionAssigner(): PartitionAssigner {
  return ({ cluster }) => ({
    name: 'AcftCoPartitionAssigner',
    version: 0,
    assign: ({ members, topics }) => {
      const partitions = Object.fromEntries(
        topics.map((t) => [t, cluster.findTopicPartitionMetadata(t).map((m) => m.partitionId)]),
      );
      const assignment = coPartitionedAssignment(
        members.map((m) => m.memberId),
        partitions,
      );
      return Promise.resolve(Object.entries(assignment).map(([memberId, a]) => encode(memberId, a)));
    },
    protocol: ({ topics }) => ({
      name: 'AcftCoPartitionAssigner',
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    }),
  });
}

/**
 * The coordination group's assignor: every member says, in its join's user data, under which
 * member id it holds the coordination partition (`heldAs()`, null if it does not), and the leader
 * gives the partition to the holder that is still that member (core/assignment.ts). A healthy
 * coordinator thus keeps its role, and its term, through any rebalance; one that was dropped from
 * the group does not get it back by claiming it.
 */
export function coordinationAssigner(heldAs: () => string | null): PartitionAssigner {
  const name = 'AcftCoordinationAssigner';
  return () => ({
    name,
    version: 0,
    assign: ({ members, topics }) => {
      const owner = coordinationOwner(
        members.map((m) => {
          const userData = AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData;
          const held = userData !== undefined && userData.length > 0 ? userData.toString('utf8') : null;
          return { memberId: m.memberId, heldAs: held };
        }),
      );
      return Promise.resolve(
        members.map((m) =>
          encode(m.memberId, Object.fromEntries(topics.map((t) => [t, m.memberId === owner ? [0] : []]))),
        ),
      );
    },
    protocol: ({ topics }) => ({
      name,
      metadata: AssignerProtocol.MemberMetadata.encode({
        version: 0,
        topics,
        userData: Buffer.from(heldAs() ?? '', 'utf8'),
      }),
    }),
  });
}
