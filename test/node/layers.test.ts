import path from "node:path";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";
import { LAYERS, layerRules } from "../../eslint.layers.js";

// The layer order of src/ (docs/decisions/0021) is held by ESLint, not by
// file headers: these lint a probe file at a path in each folder.
const root = path.resolve(import.meta.dirname, "../..");
const eslint = new ESLint({
  cwd: root,
  overrideConfigFile: true,
  overrideConfig: [{ files: ["**/*.ts"], languageOptions: { parser: tseslint.parser } }, ...layerRules],
});

async function restricted(file: string, specifier: string): Promise<boolean> {
  const [result] = await eslint.lintText(`import type { X } from "${specifier}";\nexport type Y = X;\n`, { filePath: path.join(root, file) });
  return (result?.messages ?? []).some((message) => message.ruleId === "no-restricted-imports");
}

describe("the layers of src/", () => {
  const folders = LAYERS.flat();

  it("each folder may import from the folders before it and from itself", async () => {
    for (const [at, layer] of LAYERS.entries()) {
      for (const folder of layer) {
        expect(await restricted(`src/${folder}/probe.ts`, "./other.js")).toBe(false);
        for (const below of LAYERS.slice(0, at).flat()) expect(await restricted(`src/${folder}/probe.ts`, `../${below}/x.js`)).toBe(false);
      }
    }
  });

  it("no folder imports from a folder after it, nor from a sibling backend", async () => {
    for (const [at, layer] of LAYERS.entries()) {
      for (const folder of layer) {
        const later = folders.filter((other) => other !== folder && LAYERS.findIndex((l) => l.includes(other)) >= at);
        for (const other of later) expect(await restricted(`src/${folder}/probe.ts`, `../${other}/x.js`), `${folder} -> ${other}`).toBe(true);
      }
    }
    expect(await restricted("src/d1/probe.ts", "../durable-object/checkpoint-store.js")).toBe(true);
    expect(await restricted("src/memory/probe.ts", "../d1/calls.js")).toBe(true);
    expect(await restricted("src/core/probe.ts", "../runner/projection-runner.js")).toBe(true);
  });

  it("no library file imports an entry file, a test or the example", async () => {
    for (const folder of folders) {
      expect(await restricted(`src/${folder}/probe.ts`, "../index.js")).toBe(true);
      expect(await restricted(`src/${folder}/probe.ts`, "../../test/worker.js")).toBe(true);
      expect(await restricted(`src/${folder}/probe.ts`, "../../example/src/ledger.js")).toBe(true);
    }
  });

  it("the entry files may import any folder", async () => {
    for (const folder of folders) expect(await restricted("src/index.ts", `./${folder}/x.js`)).toBe(false);
  });
});
