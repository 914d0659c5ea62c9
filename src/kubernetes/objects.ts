// The raw JSON shapes of the Kubernetes objects the driver reads, limited to the fields it uses.
// Raw, not client-node's models: those type timestamps as Date, but watches (and our client) deliver
// RFC 3339 strings, and we keep exactly what the API server sent.

import type { KubeObject } from "./reflector.js";

export interface RawCondition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export interface SandboxResource extends KubeObject {
  spec?: {
    /** v1beta1: Running (default) or Suspended. */
    operatingMode?: string;
    /** v1alpha1: 0 or 1 (default 1). */
    replicas?: number;
    podTemplate?: { metadata?: { labels?: Record<string, string> }; spec?: PodResource["spec"] };
  };
  status?: {
    conditions?: RawCondition[];
    replicas?: number;
    selector?: string;
    serviceFQDN?: string;
    service?: string;
    podIPs?: string[];
    nodeName?: string;
  };
}

export interface ContainerStateRaw {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: {
    exitCode?: number;
    signal?: number;
    reason?: string;
    message?: string;
    startedAt?: string;
    finishedAt?: string;
  };
}

export interface ContainerStatusRaw {
  name: string;
  image?: string;
  ready?: boolean;
  started?: boolean;
  restartCount?: number;
  state?: ContainerStateRaw;
  lastState?: ContainerStateRaw;
}

export interface PodResource extends KubeObject {
  spec?: {
    containers?: { name: string; image?: string }[];
    initContainers?: { name: string; image?: string }[];
    nodeName?: string;
    [key: string]: unknown;
  };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    startTime?: string;
    conditions?: RawCondition[];
    containerStatuses?: ContainerStatusRaw[];
    initContainerStatuses?: ContainerStatusRaw[];
  };
}

export interface EventResource extends KubeObject {
  involvedObject?: { kind?: string; name?: string; namespace?: string; uid?: string };
  reason?: string;
  message?: string;
  type?: string;
  count?: number;
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  eventTime?: string | null;
  series?: { count?: number; lastObservedTime?: string };
  source?: { component?: string; host?: string };
  reportingComponent?: string;
}

export interface ServiceAccountResource extends KubeObject {
  imagePullSecrets?: { name?: string }[];
}
