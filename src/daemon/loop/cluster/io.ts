/** Scale-out's inputs and effects (see state.ts and docs/scale-out.md). */
import type { ElectionEvent } from '../../../core/election.js';
import type { PartitionOffset } from '../../../core/offsets.js';
import type { LedgerMessage, ShortlistMessage } from '../../../messages/index.js';
import type { OutMessage } from '../../ports.js';

export type ClusterInput =
  | { readonly type: 'ledger-entry'; readonly message: LedgerMessage }
  | { readonly type: 'election'; readonly event: ElectionEvent }
  | { readonly type: 'shortlist'; readonly message: ShortlistMessage }
  | {
      readonly type: 'ledger-written';
      readonly ids: readonly string[];
      readonly holds: readonly PartitionOffset[];
    }
  | {
      readonly type: 'ledger-write-failed';
      readonly error: unknown;
      readonly ids: readonly string[];
      readonly holds: readonly PartitionOffset[];
    }
  | {
      readonly type: 'coordinator-written';
      readonly what: 'requests' | 'versions';
      readonly keys: readonly string[];
      readonly count: number;
      readonly version?: string;
    }
  | {
      readonly type: 'coordinator-write-failed';
      readonly what: 'requests' | 'versions';
      readonly term: number;
      readonly keys: readonly string[];
      readonly fenced: boolean;
      readonly writerLost: boolean;
      readonly error: unknown;
    }
  | {
      readonly type: 'cluster-failed';
      readonly what: 'take-over' | 'shortlist' | 'rewind';
      readonly error: unknown;
    }
  | {
      readonly type: 'rewound';
      readonly replays: readonly { partition: number; until: number }[];
      readonly partitions: readonly number[];
    };

export type ClusterEffect =
  | { readonly type: 'take-over'; readonly term: number }
  | { readonly type: 'drop-writer'; readonly term: number }
  | { readonly type: 'rejoin-election' }
  | {
      readonly type: 'write-ledger';
      readonly messages: readonly OutMessage[];
      readonly ids: readonly string[];
      readonly holds: readonly PartitionOffset[];
    }
  | {
      readonly type: 'coordinator-write';
      readonly term: number;
      readonly what: 'requests' | 'versions';
      readonly topics: readonly { readonly topic: string; readonly messages: readonly OutMessage[] }[];
      readonly keys: readonly string[];
      readonly count: number;
      readonly version?: string;
    }
  | { readonly type: 'publish-shortlist'; readonly message: OutMessage }
  | { readonly type: 'rewind'; readonly partitions: readonly number[] }
  | { readonly type: 'resume-partitions'; readonly topic: string; readonly partitions: readonly number[] };
