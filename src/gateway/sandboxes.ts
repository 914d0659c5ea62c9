// The gateway's sandbox logic, independent of the wire format: record intent in the store, render and
// create the Kubernetes object, follow it through the driver, reconcile the two. Errors are ConnectErrors
// with the code an RPC client should see and a message that names the field or object and the fix.

import { randomBytes, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { GatewayConfig } from "../config/settings.js";
import type { Logger } from "pino";
import {
  DEFAULT_WORKSPACE,
  formatFieldErrors,
  kubernetesName,
  validateMetadata,
  validateSandboxRequest,
  type SandboxRequest,
} from "../render/request.js";
import { renderSandbox, type Rendered, type RenderTarget } from "../render/sandbox.js";
import { applyRegistryMirrors } from "../registry/image-reference.js";
import type { PreflightFinding } from "../registry/preflight.js";
import { PullPathChecks, currentPullFailure, type PullSecretSource } from "./pull-path.js";
import {
  KubernetesError,
  type DriverEvent,
  type ExecChunk,
  type ExecOptions,
  type ObservedSandbox,
  type Phase,
  type SandboxDriver,
} from "../kubernetes/types.js";
import { describeValue, dns1035Label } from "../validation/kubernetes-names.js";
import { InvalidPageTokenError } from "./store/page-token.js";
import {
  AlreadyExistsError,
  ConflictError,
  StoreUnavailableError,
  type SandboxRecord,
  type SandboxStore,
} from "./store/types.js";

/** What a record stores as its spec: the request without its identity, plus gateway-side annotations. */
export type StoredSpec = Omit<SandboxRequest, "id" | "name" | "workspace"> & {
  readonly metadataAnnotations?: Readonly<Record<string, string>>;
};

export interface SandboxView {
  readonly record: SandboxRecord;
  readonly phase: Phase;
  readonly observed: ObservedSandbox | undefined;
}

export type CreateInput = Omit<SandboxRequest, "id" | "name" | "workspace"> & {
  readonly name: string;
  readonly workspace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly templateLabels?: Readonly<Record<string, string>>;
  readonly metadataAnnotations?: Readonly<Record<string, string>>;
};

export function toConnectError(err: unknown, action: string): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof StoreUnavailableError) {
    return new ConnectError(`${action}: the database is unavailable: ${err.message}`, Code.Unavailable);
  }
  if (err instanceof ConflictError) {
    return new ConnectError(`${action}: the sandbox changed concurrently; retry`, Code.Aborted);
  }
  if (err instanceof InvalidPageTokenError) {
    return new ConnectError(
      `invalid page_token: ${err.message}; start again without a token`,
      Code.InvalidArgument,
    );
  }
  if (err instanceof KubernetesError) {
    const code = {
      AlreadyExists: Code.AlreadyExists,
      NotFound: Code.NotFound,
      Invalid: Code.InvalidArgument,
      Forbidden: Code.PermissionDenied,
      Unavailable: Code.Unavailable,
      Timeout: Code.DeadlineExceeded,
      Internal: Code.Internal,
    }[err.kind];
    return new ConnectError(`${action}: ${err.message}`, code);
  }
  return new ConnectError(`${action}: ${err instanceof Error ? err.message : String(err)}`, Code.Internal);
}

/** A generated name: a letter first (DNS-1035), short and unlikely to collide. */
export function generateName(): string {
  return `sandbox-${randomBytes(5).toString("hex")}`;
}

export class Sandboxes {
  private readonly unsubscribe: () => void;
  private readonly closing = new AbortController();
  /** Aborted when the gateway shuts down: long-lived streams end on it. */
  readonly shutdownSignal: AbortSignal = this.closing.signal;
  private reconcileTimer: NodeJS.Timeout | undefined;
  /** Per sandbox, the tail of the steps that change it (see exclusive()). */
  private readonly inProgress = new Map<string, Promise<void>>();

  private readonly pullPath: PullPathChecks;
  /** Sandboxes in a classified pull failure: when it was first seen, and the timer that re-checks it. */
  private readonly failing = new Map<string, { sinceMs: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly config: GatewayConfig,
    private readonly store: SandboxStore,
    private readonly driver: SandboxDriver,
    private readonly log: Logger,
    secrets?: PullSecretSource,
  ) {
    this.pullPath = new PullPathChecks(config, secrets, log);
    this.unsubscribe = driver.subscribe((event) => void this.onDriverEvent(event));
  }

  /**
   * Follows pull failures: one that lasts the grace period is recorded (so it survives event expiry and
   * restarts) and puts the sandbox in ERROR; a sandbox that becomes READY again drops it.
   */
  private async checkPull(sandboxId: string): Promise<void> {
    const record = await this.store.getById(sandboxId);
    const tracked = this.failing.get(sandboxId);
    const clear = () => {
      if (tracked) clearTimeout(tracked.timer);
      this.failing.delete(sandboxId);
    };
    if (!record || record.desiredState !== "running") return clear();
    const observed = this.driver.observed(record.objectName);
    if (record.failure) {
      if (observed?.phase === "READY") await this.store.update(record.id, { failure: null });
      return clear();
    }
    const failure = currentPullFailure(observed, this.driver.events(sandboxId));
    if (!failure) return clear();
    const now = Date.now();
    const graceMs = this.config.pullFailureGraceSeconds * 1000;
    const since = tracked?.sinceMs ?? now;
    if (now - since >= graceMs) {
      clear();
      await this.store.update(record.id, {
        failure: { reason: failure.reason, message: failure.message, observedAtMs: now },
      });
      this.log.warn(
        { sandboxId, name: record.name, reason: failure.reason },
        `image pull failed: ${failure.message}`,
      );
      return;
    }
    if (!tracked) {
      const timer = setTimeout(
        () => void this.checkPull(sandboxId).catch(() => undefined),
        graceMs - (now - since) + 50,
      );
      timer.unref();
      this.failing.set(sandboxId, { sinceMs: since, timer });
    }
  }

  private async onDriverEvent(event: DriverEvent): Promise<void> {
    if (event.type === "changed" || event.type === "event") {
      const id = event.type === "changed" ? event.sandbox.sandboxId : event.sandboxId;
      await this.checkPull(id).catch((err: unknown) =>
        this.log.warn({ err: String(err), sandboxId: id }, "could not check the sandbox's image pull"),
      );
      return;
    }
    // The object is gone: a record marked for deletion goes with it.
    try {
      const record = await this.store.getById(event.sandboxId);
      if (record?.desiredState === "deleting") await this.store.delete(record.id);
    } catch (err) {
      this.log.warn(
        { err: String(err), sandboxId: event.sandboxId },
        "could not remove the record of a deleted sandbox",
      );
    }
  }

  private async render(record: Pick<SandboxRecord, "id" | "name" | "workspace" | "spec">): Promise<Rendered> {
    const spec = record.spec as StoredSpec;
    const request: SandboxRequest = {
      ...spec,
      id: record.id,
      name: record.name,
      workspace: record.workspace,
    };
    const target = await this.driver.target();
    const serviceAccountPullSecrets = this.config.mergeServiceAccountPullSecrets
      ? await this.driver.serviceAccountPullSecrets(this.config.serviceAccountName)
      : [];
    return renderSandbox({ request, settings: this.config, target, serviceAccountPullSecrets });
  }

  /** The configured pull path (default image, configured secrets) as preflight and the probe see it. */
  async gatewayPullPath(): Promise<{ image: string; effectiveImage: string; findings: PreflightFinding[] }> {
    const { effective } = applyRegistryMirrors(this.config.defaultImage, this.config.registryMirrors);
    const findings = await this.pullPath.evaluate(effective, this.config.imagePullSecrets);
    return { image: this.config.defaultImage, effectiveImage: effective, findings };
  }

  async target(): Promise<RenderTarget> {
    return this.driver.target();
  }

  /** The images and pull secrets of a sandbox as the driver renders them now. */
  async detail(record: SandboxRecord): Promise<Rendered> {
    try {
      return await this.render(record);
    } catch (err) {
      throw toConnectError(err, `describe sandbox "${record.name}"`);
    }
  }

  /** Creates a sandbox; leaves nothing behind when any step fails. */
  async create(input: CreateInput): Promise<SandboxView> {
    const id = randomUUID();
    const name = input.name || generateName();
    const { labels, metadataAnnotations, templateLabels, workspace, ...rest } = input;
    const spec: StoredSpec = {
      ...rest,
      // Recorded as resolved now, so a later change of the default does not change this sandbox.
      image: rest.image || this.config.defaultImage,
      ...(templateLabels ? { labels: templateLabels } : {}),
      ...(metadataAnnotations && Object.keys(metadataAnnotations).length ? { metadataAnnotations } : {}),
    };
    delete (spec as { name?: string }).name;
    const request: SandboxRequest = { ...spec, id, name, workspace };
    const errors = [...validateSandboxRequest(request), ...validateMetadata(labels, metadataAnnotations)];
    if (errors.length > 0) throw new ConnectError(formatFieldErrors(errors), Code.InvalidArgument);

    const objectName = kubernetesName(name, workspace);
    try {
      if (await this.store.getByName(workspace, name)) {
        throw new ConnectError(
          `sandbox "${name}" already exists in workspace "${workspace}"`,
          Code.AlreadyExists,
        );
      }
      const rendered = await this.render({ id, name, workspace, spec });
      await this.pullPath.beforeCreate(name, rendered.effectiveImage, rendered.imagePullSecrets);
      // Under the sandbox's lock until its object exists (or the record is rolled back): reconcile must not
      // take the new record for one whose object went missing and create the object a second time.
      return await this.exclusive(id, async (): Promise<SandboxView> => {
        let record: SandboxRecord;
        try {
          record = await this.store.create({
            id,
            workspace,
            name,
            objectName,
            spec,
            labels,
            createdAtMs: Date.now(),
            desiredState: "running",
            failure: null,
          });
        } catch (err) {
          if (err instanceof AlreadyExistsError) {
            throw new ConnectError(
              `sandbox "${name}" already exists in workspace "${workspace}"`,
              Code.AlreadyExists,
            );
          }
          throw err;
        }
        try {
          await this.driver.create(rendered.object);
        } catch (err) {
          await this.store.delete(id).catch((cleanupErr: unknown) => {
            this.log.error(
              { err: String(cleanupErr), sandboxId: id },
              "could not roll back the sandbox record",
            );
          });
          if (err instanceof KubernetesError && err.kind === "AlreadyExists") {
            throw new ConnectError(
              `a Kubernetes object named "${objectName}" already exists in namespace "${this.config.namespace}" but no sandbox record owns it; delete it or choose another name`,
              Code.AlreadyExists,
            );
          }
          throw err;
        }
        this.log.info({ sandboxId: id, name, workspace, image: rendered.effectiveImage }, "sandbox created");
        return { record, phase: "PROVISIONING", observed: undefined };
      });
    } catch (err) {
      throw toConnectError(err, `create sandbox "${name}"`);
    }
  }

  view(record: SandboxRecord): SandboxView {
    const observed = this.driver.observed(record.objectName);
    const matches = observed && observed.sandboxId === record.id ? observed : undefined;
    let phase: Phase;
    if (record.desiredState === "deleting") phase = "DELETING";
    else if (record.failure) phase = "ERROR";
    else if (matches) phase = matches.phase;
    else if (record.desiredState === "stopped") phase = "STOPPED";
    else phase = "PROVISIONING";
    return { record, phase, observed: matches };
  }

  async get(workspace: string, name: string): Promise<SandboxView> {
    const record = await this.find(workspace, name);
    return this.view(record);
  }

  private async find(workspace: string, name: string): Promise<SandboxRecord> {
    // A name or workspace no sandbox can have is bad input, not an unknown sandbox.
    const nameReason = dns1035Label(name);
    if (nameReason)
      throw new ConnectError(`invalid name: ${describeValue(name)} ${nameReason}`, Code.InvalidArgument);
    const workspaceReason = dns1035Label(workspace);
    if (workspaceReason) {
      throw new ConnectError(
        `invalid workspace: ${describeValue(workspace)} ${workspaceReason}`,
        Code.InvalidArgument,
      );
    }
    let record: SandboxRecord | undefined;
    try {
      record = await this.store.getByName(workspace, name);
    } catch (err) {
      throw toConnectError(err, `get sandbox "${name}"`);
    }
    if (!record)
      throw new ConnectError(`sandbox "${name}" not found in workspace "${workspace}"`, Code.NotFound);
    return record;
  }

  async list(
    options: Parameters<SandboxStore["list"]>[0],
  ): Promise<{ views: SandboxView[]; nextPageToken: string }> {
    try {
      const page = await this.store.list(options);
      return { views: page.records.map((r) => this.view(r)), nextPageToken: page.nextPageToken };
    } catch (err) {
      throw toConnectError(err, "list sandboxes");
    }
  }

  /** Returns "completed" when the object was already gone, "accepted" when deletion is under way. */
  async delete(
    workspace: string,
    name: string,
    allowMissing: boolean,
  ): Promise<{ outcome: "completed" | "accepted" | "absent"; id: string }> {
    let record: SandboxRecord;
    try {
      record = await this.find(workspace, name);
    } catch (err) {
      if (allowMissing && err instanceof ConnectError && err.code === Code.NotFound)
        return { outcome: "absent", id: "" };
      throw err;
    }
    try {
      return await this.exclusive(record.id, async () => {
        // Read again under the lock: reconcile may have finished this sandbox's deletion meanwhile.
        const current = await this.store.getById(record.id);
        if (!current) return { outcome: "completed" as const, id: record.id };
        if (current.desiredState !== "deleting")
          record = await this.store.update(current.id, { desiredState: "deleting" });
        let existed: boolean;
        try {
          existed = await this.driver.delete(record.objectName);
        } catch (err) {
          // Kubernetes refused or could not be reached: the call fails, so it changes nothing (a crash
          // here instead leaves DELETING, which reconcile carries through).
          if (current.desiredState !== "deleting") {
            await this.store
              .update(current.id, { desiredState: current.desiredState })
              .catch((restoreErr: unknown) =>
                this.log.error(
                  { err: String(restoreErr), sandboxId: current.id },
                  "could not restore the state of a sandbox whose deletion failed",
                ),
              );
          }
          throw err;
        }
        if (!existed || !this.driver.observed(record.objectName)) {
          await this.store.delete(record.id);
          return { outcome: "completed" as const, id: record.id };
        }
        return { outcome: "accepted" as const, id: record.id };
      });
    } catch (err) {
      throw toConnectError(err, `delete sandbox "${name}"`);
    }
  }

  async stop(workspace: string, name: string): Promise<SandboxView> {
    const record = await this.find(workspace, name);
    try {
      await this.driver.stopSandbox(record.objectName);
      return this.view(await this.store.update(record.id, { desiredState: "stopped" }));
    } catch (err) {
      throw toConnectError(err, `stop sandbox "${name}"`);
    }
  }

  async start(workspace: string, name: string): Promise<SandboxView> {
    const record = await this.find(workspace, name);
    try {
      const rendered = await this.render(record);
      await this.driver.startSandbox(record.objectName, rendered.object);
      return this.view(await this.store.update(record.id, { desiredState: "running", failure: null }));
    } catch (err) {
      throw toConnectError(err, `start sandbox "${name}"`);
    }
  }

  async output(workspace: string, name: string, tailLines: number, limitBytes: number): Promise<string> {
    const record = await this.find(workspace, name);
    try {
      return await this.driver.logs(record.objectName, { tailLines, limitBytes });
    } catch (err) {
      throw toConnectError(err, `read the output of sandbox "${name}"`);
    }
  }

  async *exec(workspace: string, name: string, options: ExecOptions): AsyncGenerator<ExecChunk> {
    const view = await this.get(workspace, name);
    if (view.phase !== "READY") {
      throw new ConnectError(
        `sandbox "${name}" is ${view.phase}, not READY; wait for it (openshell sandbox get ${name}) and retry`,
        Code.FailedPrecondition,
      );
    }
    try {
      yield* this.driver.exec(view.record.objectName, options);
    } catch (err) {
      throw toConnectError(err, `exec in sandbox "${name}"`);
    }
  }

  /** Subscribes to changes of one sandbox (by id). */
  subscribe(sandboxId: string, listener: (event: DriverEvent) => void): () => void {
    return this.driver.subscribe((event) => {
      const id = event.type === "changed" ? event.sandbox.sandboxId : event.sandboxId;
      if (id === sandboxId) listener(event);
    });
  }

  /**
   * Runs `fn` after every earlier step on the same sandbox in this process has finished: a delete and a
   * reconcile pass must not act on the same sandbox at once (reconcile would re-create from a record
   * the delete is removing, or delete again what the delete has just handed to Kubernetes).
   */
  private async exclusive<T>(sandboxId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.inProgress.get(sandboxId) ?? Promise.resolve();
    const run = previous.then(fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.inProgress.set(sandboxId, settled);
    try {
      return await run;
    } finally {
      if (this.inProgress.get(sandboxId) === settled) this.inProgress.delete(sandboxId);
    }
  }

  /**
   * Brings Kubernetes and the records together: a record whose object is missing is recreated (or
   * dropped when it was being deleted); a record being deleted whose object Kubernetes was never asked to
   * delete (the gateway died in between) has its deletion resumed; an object without a record older than
   * the grace period is deleted. What the snapshot suggests is checked again, under the sandbox's lock,
   * against the store before anything is changed: RPCs run meanwhile.
   */
  async reconcile(
    orphanGraceMs: number,
    now = Date.now(),
  ): Promise<{ recreated: number; removed: number; resumed: number; orphans: number }> {
    const counts = { recreated: 0, removed: 0, resumed: 0, orphans: 0 };
    const records = await this.store.all();
    const byId = new Map(records.map((r) => [r.id, r]));
    const owned = (record: SandboxRecord) => {
      const observed = this.driver.observed(record.objectName);
      return { observed, mine: observed && observed.sandboxId === record.id ? observed : undefined };
    };
    const needsWork = (record: SandboxRecord) => {
      const { observed, mine } = owned(record);
      if (record.desiredState === "deleting") return !mine || !mine.deleting;
      return !mine && !observed && record.desiredState === "running";
    };
    for (const snapshot of records) {
      if (!needsWork(snapshot)) continue;
      await this.exclusive(snapshot.id, async () => {
        const record = await this.store.getById(snapshot.id);
        if (!record || !needsWork(record)) return;
        const { mine } = owned(record);
        if (record.desiredState === "deleting") {
          if (!mine) {
            await this.store.delete(record.id);
            counts.removed++;
            return;
          }
          await this.driver.delete(record.objectName);
          counts.resumed++;
          this.log.warn(
            { sandboxId: record.id, name: record.name },
            "resumed the deletion of a sandbox whose Kubernetes object was never deleted",
          );
          return;
        }
        // A stopped pod-mode sandbox has no object on purpose; only running ones are re-created.
        try {
          const rendered = await this.render(record);
          await this.driver.create(rendered.object);
          counts.recreated++;
          this.log.warn(
            { sandboxId: record.id, name: record.name },
            "re-created a sandbox whose Kubernetes object was missing",
          );
        } catch (err) {
          if (!(err instanceof KubernetesError && err.kind === "AlreadyExists")) {
            this.log.error(
              { err: String(err), sandboxId: record.id },
              "could not re-create a missing sandbox object",
            );
          }
        }
      });
    }
    for (const observed of this.driver.observedAll()) {
      if (byId.has(observed.sandboxId)) continue;
      // The grace runs from the object's creation (a sandbox whose pod never started is no older than
      // one created a moment ago); the store is read again because the object may have been created after
      // the snapshot, by a create that wrote its record first.
      const since = observed.createdAtMs ?? observed.startedAtMs;
      const ageMs = since !== undefined ? now - since : Number.POSITIVE_INFINITY;
      if (ageMs < orphanGraceMs) continue;
      await this.exclusive(observed.sandboxId, async () => {
        if (observed.sandboxId && (await this.store.getById(observed.sandboxId))) return;
        await this.driver.delete(observed.objectName);
        counts.orphans++;
        this.log.warn(
          { objectName: observed.objectName, sandboxId: observed.sandboxId },
          "deleted a sandbox object that has no record",
        );
      });
    }
    return counts;
  }

  startReconcileLoop(intervalMs: number, orphanGraceMs: number): void {
    const tick = async () => {
      try {
        const counts = await this.reconcile(orphanGraceMs);
        if (counts.recreated || counts.removed || counts.resumed || counts.orphans)
          this.log.info(counts, "reconcile");
      } catch (err) {
        this.log.warn({ err: String(err) }, "reconcile failed; will retry");
      }
      this.reconcileTimer = setTimeout(() => void tick(), intervalMs);
      this.reconcileTimer.unref();
    };
    void tick();
  }

  close(): void {
    this.closing.abort();
    for (const { timer } of this.failing.values()) clearTimeout(timer);
    this.failing.clear();
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    this.unsubscribe();
  }
}

export { DEFAULT_WORKSPACE };
