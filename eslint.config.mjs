import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "coverage/", ".db-platform/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The client suite's migration files, in the CommonJS shape Knex and node-pg-migrate load.
    files: ["test/clients/**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { exports: "writable" } },
  },
  {
    // scripts/engine/accepts.cjs: called by the bootstrap with plain `node`, before any TypeScript.
    files: ["scripts/**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", process: "readonly", console: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    files: ["bin/**/*.js"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", process: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
);
