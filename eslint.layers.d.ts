// Types of eslint.layers.js, for test/node/layers.test.ts.
import type { Linter } from "eslint";

/** The folders of src/, bottom first; folders in one entry are siblings. */
export declare const LAYERS: readonly (readonly string[])[];
/** ESLint flat-config objects, one per folder of src/. */
export declare const layerRules: Linter.Config[];
