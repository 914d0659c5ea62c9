// Shell completion generated from the command tree, so it never drifts from the real commands.

import type { Command } from "commander";

interface Node {
  readonly path: string[];
  readonly subcommands: string[];
  readonly flags: string[];
}

function walk(command: Command, path: string[], out: Node[]): void {
  const flags = command.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
  out.push({ path, subcommands: command.commands.map((c) => c.name()), flags: [...flags, "--help"] });
  for (const sub of command.commands) walk(sub, [...path, sub.name()], out);
}

function nodes(program: Command): Node[] {
  const out: Node[] = [];
  walk(program, [], out);
  return out;
}

export function completionScript(program: Command, shell: "bash" | "zsh" | "fish"): string {
  const all = nodes(program);
  if (shell === "fish") {
    const lines = ["# openshell completion for fish: openshell completion fish | source"];
    for (const node of all) {
      const condition = node.path.length
        ? `__fish_seen_subcommand_from ${node.path.at(-1)}`
        : "__fish_use_subcommand";
      for (const sub of node.subcommands) lines.push(`complete -c openshell -f -n '${condition}' -a ${sub}`);
      for (const flag of node.flags.filter((f) => f.startsWith("--"))) {
        lines.push(`complete -c openshell -n '${condition}' -l ${flag.slice(2)}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }
  const cases = all
    .map(
      (node) => `    "${node.path.join(" ")}") words="${[...node.subcommands, ...node.flags].join(" ")}" ;;`,
    )
    .join("\n");
  const body = `_openshell() {
  local cur path="" word words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for word in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$word" in -*) ;; *) path="\${path:+$path }$word" ;; esac
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
`;
  if (shell === "zsh") {
    return `# openshell completion for zsh: source <(openshell completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${body}complete -F _openshell openshell\n`;
  }
  return `# openshell completion for bash: source <(openshell completion bash)\n${body}complete -F _openshell openshell\n`;
}
