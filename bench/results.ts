// The shape of build/bench/results.json: what run.ts writes, report.ts renders and the smoke test checks.

import type { MachineInfo } from "./machine.js";
import type { Summary } from "./stats.js";

export interface Throughput {
  readonly ops: number;
  readonly errors: number;
  /** Sum of the wall times of this arm's chunks, seconds. */
  readonly seconds: number;
  readonly perSecond: number;
}

export interface CreateArm {
  readonly latencyMs: Summary;
  readonly throughput: Throughput;
}

export interface ReadsAt {
  readonly sandboxes: number;
  /** Time to create the sandboxes that brought the gateway to this size (not a measurement target). */
  readonly fill: Throughput;
  readonly get: Summary;
  /** One ListSandboxes call with page_size 500 (the maximum), first page. */
  readonly listPage: Summary;
  /** Every page of ListSandboxes (page_size 500) until the last, i.e. all `sandboxes` sandboxes. */
  readonly listAll: Summary;
}

export interface ReadyRun {
  readonly name: string;
  /** Container process start (its own /proc/uptime, 10 ms resolution), epoch ms; undefined if unreadable. */
  readonly containerStartMs: number | undefined;
  /** Pod status containerStatuses[agent].state.running.startedAt (1 s resolution), epoch ms. */
  readonly kubeletStartedAtMs: number | undefined;
  /** When the bench's own pod watch saw the agent container running (the kubelet's status write). */
  readonly podRunningSeenMs: number | undefined;
  /** When the bench's own Sandbox watch saw Ready=True (the agent-sandbox controller's status write). */
  readonly sandboxReadySeenMs: number | undefined;
  /** When the gateway's WatchSandbox stream delivered phase READY to the client. */
  readonly gatewayReadyMs: number;
  readonly createSentMs: number;
  /** What the bench's watches and the gateway stream saw, relative to createSentMs. */
  readonly trace: string[];
}

export interface Results {
  readonly version: 1;
  readonly mode: "smoke" | "full";
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: MachineInfo;
  /** 1, 5 and 15 minute load averages when the run ended (absent in results of older runs). */
  readonly loadAverageAtEnd?: readonly number[];
  readonly params: Record<string, number>;
  readonly notes: string[];
  readonly create: {
    readonly concurrency: number;
    readonly rounds: number;
    /** Gateway-created and raw-created objects are the same apart from name, namespace and id. */
    readonly identicalObjects: boolean;
    readonly gateway: CreateArm;
    readonly gatewayPreflightOff: CreateArm;
    /** Direct creates on kept-alive TLS connections. */
    readonly raw: CreateArm;
    /** Direct creates through the gateway's own KubeClient (a new TLS connection per call). */
    readonly rawGatewayClient: CreateArm;
    /** CPU time the gateway process used over the create phase, per create it served. */
    readonly gatewayCpuMsPerCreate: number;
    readonly gatewayPreflightOffCpuMsPerCreate: number;
    readonly ratios: {
      readonly gatewayOverRawP50: number;
      readonly gatewayOverRawP99: number;
      readonly preflightOnOverOffP50: number;
      readonly preflightOnOverOffP99: number;
      readonly gatewayOverRawThroughput: number;
      readonly gatewayOverRawGatewayClientP50: number;
      readonly gatewayOverRawGatewayClientP99: number;
    };
  };
  readonly reads: ReadsAt[];
  readonly watch: {
    readonly clients: number;
    readonly changes: number;
    readonly sandboxesKnown: number;
    /** Status patch sent → delivered, every (change, client) pair. */
    readonly deliveryMs: Summary;
    /** Status patch sent → delivered at the last of the clients, per change. */
    readonly allClientsMs: Summary;
    /** Status patch sent → seen by a direct Kubernetes watch in the bench process (the floor). */
    readonly rawWatchMs: Summary;
    /** Per change: the last client's delivery minus the direct watch's (what the gateway adds). */
    readonly lastClientOverRawMs: Summary;
    /** Round trip of the status PATCH itself. */
    readonly patchMs: Summary;
    readonly missed: number;
  };
  readonly memory: {
    readonly idleRssMiB: number;
    readonly loadedRssMiB: number;
    readonly loadedPeakRssMiB: number;
    readonly sandboxesKnown: number;
  };
  readonly timeToReady: {
    readonly runs: ReadyRun[];
    /** gateway READY delivered − container process start (ms). */
    readonly readyAfterContainerStartMs: Summary;
    /** gateway READY delivered − kubelet startedAt (1 s resolution; for reference). */
    readonly readyAfterKubeletStartedAtMs: Summary;
    /** Breakdown: container start → kubelet reports running; → controller sets Ready; → gateway READY. */
    readonly kubeletReportMs: Summary;
    readonly controllerMs: Summary;
    readonly gatewayMs: Summary;
  };
  readonly cleanup: { readonly namespaces: string[]; readonly leftBehind: string[] };
}
