import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { layerRules } from "./eslint.layers.js";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "**/.wrangler/", "docs/api/", "coverage/", "test/consumer-app/", ".tmp/"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
    },
  },
  {
    // Miniflare hands Node a proxy that is a D1Database by shape, not by class,
    // which is exactly how users pass it to the store from Node.
    files: ["test/node/**/*.ts"],
    rules: { "@typescript-eslint/no-unsafe-class-instance-assignment": "off" },
  },
  ...layerRules,
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
