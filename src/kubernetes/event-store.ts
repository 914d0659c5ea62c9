// Recent platform events per sandbox, bounded, de-duplicated by the Event's uid (the API server
// updates one Event object, bumping its count, when the same thing happens again), plus a short
// holding area for events that arrive before the object they are about.

import type { EventResource } from "./objects.js";
import { toPlatformEvent } from "./status.js";
import type { PlatformEvent } from "./types.js";

export interface EventStoreLimits {
  /** Events kept per sandbox; the oldest go first. */
  readonly perSandbox: number;
  /** Held (unmatched) events per involved object name. */
  readonly heldPerName: number;
  /** Involved object names with held events. */
  readonly heldNames: number;
}

export const DEFAULT_EVENT_LIMITS: EventStoreLimits = { perSandbox: 64, heldPerName: 16, heldNames: 256 };

export class EventStore {
  private readonly bySandbox = new Map<string, Map<string, PlatformEvent>>();
  private readonly held = new Map<string, EventResource[]>();

  constructor(private readonly limits: EventStoreLimits = DEFAULT_EVENT_LIMITS) {}

  /**
   * Records an event for a sandbox; returns the PlatformEvent when it is new or changed (count or
   * time), undefined for a repeat (e.g. the same Event seen again after a relist).
   */
  record(sandboxId: string, ev: EventResource): PlatformEvent | undefined {
    const event = toPlatformEvent(ev);
    const uid = ev.metadata?.uid ?? ev.metadata?.name ?? "";
    let byUid = this.bySandbox.get(sandboxId);
    if (!byUid) {
      byUid = new Map();
      this.bySandbox.set(sandboxId, byUid);
    }
    const previous = byUid.get(uid);
    if (previous && previous.timeMs === event.timeMs && previous.metadata.count === event.metadata.count)
      return undefined;
    // Re-inserting moves an updated event to the end, so trimming drops the least recent.
    byUid.delete(uid);
    byUid.set(uid, event);
    while (byUid.size > this.limits.perSandbox) byUid.delete(byUid.keys().next().value as string);
    return event;
  }

  /** Oldest first. */
  list(sandboxId: string): PlatformEvent[] {
    return [...(this.bySandbox.get(sandboxId)?.values() ?? [])].sort((a, b) => a.timeMs - b.timeMs);
  }

  forget(sandboxId: string): void {
    this.bySandbox.delete(sandboxId);
  }

  /** Keeps an event about an object we do not know (yet); most are about unmanaged pods, hence the bounds. */
  hold(ev: EventResource): void {
    const name = ev.involvedObject?.name ?? "";
    const list = this.held.get(name) ?? [];
    list.push(ev);
    this.held.delete(name);
    this.held.set(name, list.slice(-this.limits.heldPerName));
    while (this.held.size > this.limits.heldNames) this.held.delete(this.held.keys().next().value as string);
  }

  /** Removes and returns the events held for an object name. */
  takeHeld(name: string): EventResource[] {
    const list = this.held.get(name) ?? [];
    this.held.delete(name);
    return list;
  }
}
