// A self-contained SVG chart of latency distributions: one panel per measurement, one row per series,
// drawn as a box plot on a logarithmic millisecond axis (whiskers min..p99, box p25..p75, a bar at p50,
// a dot at max). Written from the summaries alone, so the chart and the JSON never disagree.

import type { Summary } from "./stats.js";

export interface ChartSeries {
  readonly label: string;
  readonly summary: Summary;
}

export interface ChartPanel {
  readonly title: string;
  readonly series: readonly ChartSeries[];
  /** A vertical dashed line (a target), in ms. */
  readonly target?: { readonly ms: number; readonly label: string };
}

const WIDTH = 1000;
const LABEL_W = 250;
/** A column right of the plot for the p50/p99 text, so it never overlaps a whisker or runs off the edge. */
const VALUE_W = 180;
const PLOT_W = WIDTH - LABEL_W - VALUE_W - 20;
const ROW_H = 26;
const PANEL_HEAD = 44;
const AXIS_H = 26;
const COLORS = ["#2f6fb0", "#d0752b", "#3a9a52", "#9a4fb0", "#b03a4a", "#6b6b6b"];

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function fmt(ms: number): string {
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${Math.round(ms * 10) / 10} ms`;
}

/** The largest 1, 2 or 5 × 10^e not above v. */
function niceBelow(v: number): number {
  const e = 10 ** Math.floor(Math.log10(v));
  return [5, 2, 1].map((m) => m * e).find((c) => c <= v) ?? e;
}

/** The smallest 1, 2 or 5 × 10^e not below v. */
function niceAbove(v: number): number {
  const e = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * e).find((c) => c >= v) ?? 10 * e;
}

/** Powers of ten (and 2×, 5×) covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out;
}

export function renderChart(title: string, panels: readonly ChartPanel[]): string {
  const parts: string[] = [];
  let y = 40;
  for (const panel of panels) {
    const values = panel.series.flatMap((s) => [s.summary.min, s.summary.max]).filter((v) => v > 0);
    if (panel.target) values.push(panel.target.ms);
    const lo = niceBelow(Math.max(0.01, Math.min(...values)));
    const hi = niceAbove(Math.max(...values, lo * 10));
    const x = (ms: number) =>
      LABEL_W +
      ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * PLOT_W;
    parts.push(`<text x="10" y="${y + 20}" class="panel">${escape(panel.title)}</text>`);
    y += PANEL_HEAD;
    const top = y;
    panel.series.forEach((s, i) => {
      const c = COLORS[i % COLORS.length]!;
      const m = y + ROW_H / 2;
      const q = s.summary;
      parts.push(
        `<text x="10" y="${m + 4}" class="label">${escape(s.label)} (n=${q.n})</text>`,
        `<line x1="${x(q.min)}" x2="${x(q.p99)}" y1="${m}" y2="${m}" stroke="${c}" stroke-width="1.5"/>`,
        `<line x1="${x(q.min)}" x2="${x(q.min)}" y1="${m - 5}" y2="${m + 5}" stroke="${c}"/>`,
        `<line x1="${x(q.p99)}" x2="${x(q.p99)}" y1="${m - 5}" y2="${m + 5}" stroke="${c}"/>`,
        `<rect x="${x(q.p25)}" y="${m - 8}" width="${Math.max(1, x(q.p75) - x(q.p25))}" height="16" fill="${c}" fill-opacity="0.35" stroke="${c}"/>`,
        `<line x1="${x(q.p50)}" x2="${x(q.p50)}" y1="${m - 9}" y2="${m + 9}" stroke="${c}" stroke-width="3"/>`,
        `<circle cx="${x(q.max)}" cy="${m}" r="2.5" fill="${c}"/>`,
        `<text x="${LABEL_W + PLOT_W + 16}" y="${m + 4}" class="value">p50 ${fmt(q.p50)} · p99 ${fmt(q.p99)}</text>`,
      );
      y += ROW_H;
    });
    for (const t of ticks(lo, hi)) {
      parts.push(
        `<line x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${y}" stroke="#ddd"/>`,
        `<text x="${x(t)}" y="${y + 16}" class="tick" text-anchor="middle">${fmt(t)}</text>`,
      );
    }
    if (panel.target) {
      const tx = x(panel.target.ms);
      parts.push(
        `<line x1="${tx}" x2="${tx}" y1="${top - 4}" y2="${y}" stroke="#b00" stroke-dasharray="4 3"/>`,
        `<text x="${tx + 4}" y="${top - 6}" class="target">${escape(panel.target.label)}</text>`,
      );
    }
    y += AXIS_H + 10;
  }
  const height = y + 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    `<style>.title{font-size:16px;font-weight:bold}.panel{font-size:13px;font-weight:bold}.label{font-size:12px}.value{font-size:11px;fill:#333}.tick{font-size:10px;fill:#666}.target{font-size:10px;fill:#b00}.note{font-size:10px;fill:#666}</style>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="24" class="title">${escape(title)}</text>`,
    ...parts,
    `<text x="10" y="${height - 10}" class="note">log scale; whiskers min..p99, box p25..p75, thick bar p50, dot max; dashed red line: target</text>`,
    `</svg>`,
    "",
  ].join("\n");
}
