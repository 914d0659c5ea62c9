// Rewrites the configuration reference in README.md from the settings table.
import { readFileSync, writeFileSync } from "node:fs";
import { REFERENCE_BEGIN, REFERENCE_END, configReference } from "../src/config/reference.js";

const path = new URL("../README.md", import.meta.url);
const text = readFileSync(path, "utf8");
const start = text.indexOf(REFERENCE_BEGIN);
const end = text.indexOf(REFERENCE_END);
if (start < 0 || end < 0) throw new Error("README.md has no config-reference markers");
writeFileSync(path, text.slice(0, start) + configReference() + text.slice(end + REFERENCE_END.length));
