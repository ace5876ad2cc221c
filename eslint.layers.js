// The layers of src/ and their order (docs/decisions/0021): each folder may
// import only from the folders before it, the backends never from each other,
// and no library file from an entry file (src/*.ts), from tests or from the
// example. `npm run lint` (and so `npm test`) fails on an import that runs the
// wrong way; test/node/layers.test.ts shows that it does.

/** The folders of src/, bottom first; folders on one line are siblings that never import each other. */
export const LAYERS = [["core"], ["sql"], ["d1", "durable-object", "memory"], ["orm"], ["runner"], ["daemon"], ["metrics"], ["testing"], ["admin"], ["cli"]];

const ALL = LAYERS.flat();

/** What a file in `folder` may not import: a later or sibling folder, an entry file, tests, the example. */
function forbidden(folder) {
  const at = LAYERS.findIndex((layer) => layer.includes(folder));
  const later = ALL.filter((other) => other !== folder && LAYERS.findIndex((layer) => layer.includes(other)) >= at);
  return [
    {
      regex: `^\\.\\./(${later.join("|")})/`,
      message: `src/${folder}/ may import only from ${LAYERS.slice(0, at).flat().map((f) => `src/${f}/`).join(", ") || "itself"} (docs/decisions/0021).`,
    },
    { regex: "^\\.\\./[^/]+\\.js$", message: "Library files do not import the entry files (src/*.ts); import the module that declares the name." },
    { regex: "(^|/)(test|example|bench)/", message: "The library never imports test, bench or example code." },
  ];
}

/** ESLint flat-config objects, one per folder. */
export const layerRules = ALL.map((folder) => ({
  files: [`src/${folder}/**/*.ts`],
  rules: { "no-restricted-imports": ["error", { patterns: forbidden(folder) }] },
}));
