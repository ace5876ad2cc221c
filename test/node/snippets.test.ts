import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

// The README and the guides are code too. Every block marked
// `<!-- snippet: path -->` must be that file of the repository byte for byte
// (the Quick start's files are tested in workerd by the quickstart project);
// every other TypeScript block is compiled, strict and with
// noUncheckedIndexedAccess, against the package's own types, with the names
// a block leaves to the reader declared in docs/guides/snippets.d.ts.

const root = path.resolve(import.meta.dirname, "../..");

interface Block {
  readonly file: string;
  readonly line: number;
  readonly lang: string;
  readonly code: string;
  readonly snippet: string | undefined;
}

async function documents(): Promise<string[]> {
  const guides = (await readdir(path.join(root, "docs", "guides"))).filter((name) => name.endsWith(".md")).map((name) => path.join("docs", "guides", name));
  return ["README.md", ...guides.sort()];
}

/** The fenced blocks of a Markdown text, with the snippet marker just before each, if any. */
function blocks(file: string, text: string): Block[] {
  const lines = text.split("\n");
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] ?? "");
    if (open === null) continue;
    const start = i;
    let end = i + 1;
    while (end < lines.length && lines[end] !== "```") end++;
    let before = start - 1;
    while (before >= 0 && (lines[before] ?? "").trim() === "") before--;
    const marker = /^<!-- snippet: (\S+) -->$/.exec(lines[before] ?? "");
    found.push({ file, line: start + 1, lang: open[1] ?? "", code: lines.slice(start + 1, end).join("\n"), snippet: marker?.[1] });
    i = end;
  }
  return found;
}

async function allBlocks(): Promise<Block[]> {
  const out: Block[] = [];
  for (const file of await documents()) out.push(...blocks(file, await readFile(path.join(root, file), "utf8")));
  return out;
}

describe("the README and the guides", () => {
  it("every snippet block is its file, byte for byte", async () => {
    const marked = (await allBlocks()).filter((block) => block.snippet !== undefined);
    expect(marked.length).toBeGreaterThanOrEqual(8);
    for (const block of marked) {
      const file = (await readFile(path.join(root, block.snippet ?? ""), "utf8")).replace(/\n$/, "");
      expect(block.code, `${block.file}:${String(block.line)} should be ${block.snippet ?? ""}`).toBe(file);
    }
  });

  it("every other TypeScript block type-checks (strict, noUncheckedIndexedAccess) against the package", async () => {
    const typescript = (await allBlocks()).filter((block) => block.lang === "ts" && block.snippet === undefined);
    expect(typescript.length).toBeGreaterThanOrEqual(10);
    const dir = path.join(root, ".tmp", "snippets");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const files: string[] = [];
    const origin = new Map<string, Block>();
    for (const [index, block] of typescript.entries()) {
      const name = path.join(dir, `${path.basename(block.file, ".md")}-${String(index)}.ts`);
      // Each block is a module of its own, so that two blocks may declare the same name.
      await writeFile(name, `${block.code}\nexport {};\n`);
      files.push(name);
      origin.set(name, block);
    }
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      lib: ["lib.esnext.d.ts"],
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      types: ["@cloudflare/workers-types"],
      typeRoots: [path.join(root, "node_modules", "@types"), path.join(root, "node_modules")],
      strict: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: true,
      noEmit: true,
      baseUrl: root,
      paths: {
        "@synapse-es/checkpointstore-d1": ["src/index.ts"],
        "@synapse-es/checkpointstore-d1/*": ["src/*.ts"],
      },
    };
    const program = ts.createProgram([...files, path.join(root, "docs", "guides", "snippets.d.ts")], options);
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((diagnostic) => diagnostic.file === undefined || files.includes(path.resolve(diagnostic.file.fileName)) || diagnostic.file.fileName.endsWith("snippets.d.ts"))
      .map((diagnostic) => {
        const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
        if (diagnostic.file === undefined || diagnostic.start === undefined) return message;
        const block = origin.get(path.resolve(diagnostic.file.fileName));
        const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
        return `${block === undefined ? diagnostic.file.fileName : `${block.file}:${String(block.line + 1 + line)}`}: ${message}`;
      });
    expect(problems).toEqual([]);
  }, 120_000);
});
