/**
 * The `labeling-requests` message of a planned request: one place for what a request records of
 * why it was made (DESIGN.md, Observability), shared by the single instance and the coordinator.
 */
import type { PlannedRequest } from '../core/windows.js';
import { encodeLabelingRequest, requestScoresOf, type LabelingRequestMessage } from '../messages/index.js';

/** Encodes `r` as a labeling-request message value. */
export function encodePlannedRequest(
  r: PlannedRequest,
  context: {
    shortlistSize: number;
    criterion: LabelingRequestMessage['criterion'];
    leaseExpiresAt: string;
    time: string;
  },
): string {
  return encodeLabelingRequest({
    requestId: r.requestId,
    candidateId: r.candidateId,
    modelVersion: r.modelVersion,
    scores: requestScoresOf(r.score),
    rank: r.rank,
    drawProbability: r.drawProbability,
    shortlistSize: context.shortlistSize,
    takenBy: r.takenBy,
    criterion: context.criterion,
    leaseExpiresAt: context.leaseExpiresAt,
    time: context.time,
  });
}
