// The gateway's persistent record of a sandbox: intent and identity. Kubernetes holds runtime status.

export type DesiredState = "running" | "stopped" | "deleting";

export interface PullFailure {
  /** Stable reason code, e.g. ImagePullAuthFailed. */
  readonly reason: string;
  /** The kubelet's (or preflight's) message; never contains credentials. */
  readonly message: string;
  readonly observedAtMs: number;
}

export interface SandboxRecord {
  /** UUIDv4, assigned by the gateway. */
  readonly id: string;
  readonly workspace: string;
  readonly name: string;
  /** The Kubernetes object name (`name`, or `{workspace}--{name}`). */
  readonly objectName: string;
  /** The create request's spec as the gateway normalised it (JSON-serialisable). */
  readonly spec: unknown;
  /** Gateway-side labels from CreateSandboxRequest.labels (used for label selectors). */
  readonly labels: Readonly<Record<string, string>>;
  readonly createdAtMs: number;
  readonly desiredState: DesiredState;
  /** The pull failure that put the sandbox in ERROR, kept so it survives event expiry and restarts. */
  readonly failure: PullFailure | null;
  /** Incremented on every update; used for optimistic concurrency. */
  readonly version: number;
}

export interface ListOptions {
  readonly workspace?: string;
  /** Only records whose labels contain every pair. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly limit: number;
  /** Opaque cursor from a previous page. */
  readonly pageToken?: string;
}

export interface ListPage {
  readonly records: readonly SandboxRecord[];
  /** Empty when this is the last page. */
  readonly nextPageToken: string;
}

export type RecordPatch = Partial<Pick<SandboxRecord, "desiredState" | "failure" | "spec" | "labels">>;

export class AlreadyExistsError extends Error {}
export class NotFoundError extends Error {}
export class ConflictError extends Error {}
/** The database cannot be reached or answered with an error; the message names the database, never its password. */
export class StoreUnavailableError extends Error {}

export interface SandboxStore {
  /** Runs pending migrations (idempotent; safe with several gateways starting at once). */
  migrate(): Promise<void>;
  /** Inserts a record; AlreadyExistsError when (workspace, name) or id is taken. */
  create(record: Omit<SandboxRecord, "version">): Promise<SandboxRecord>;
  getById(id: string): Promise<SandboxRecord | undefined>;
  getByName(workspace: string, name: string): Promise<SandboxRecord | undefined>;
  /** Ordered by (createdAtMs, id). */
  list(options: ListOptions): Promise<ListPage>;
  /** Every record (for reconcile and the reflector's index); ordered by (createdAtMs, id). */
  all(): Promise<SandboxRecord[]>;
  /** Applies a patch; ConflictError when expectedVersion is given and differs; NotFoundError when absent. */
  update(id: string, patch: RecordPatch, expectedVersion?: number): Promise<SandboxRecord>;
  /** Deletes a record; returns false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** A cheap round trip for readiness (e.g. SELECT 1) with a timeout. */
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}
