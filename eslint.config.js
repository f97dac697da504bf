// Lint: the package boundaries (STYLE.md "Import rules") and an exhaustive frame switch.
// Type-aware only where a rule needs it; formatting is not linted.
import tseslint from 'typescript-eslint';

const deepImports = {
  group: ['**/client-sdk/src/**', '**/server/src/**', '**/console/src/**', '@sluice/*/src/*', '@sluice/*/dist/*'],
  message: 'Import a package by its public entry point (see its exports map), never another package\'s files.',
};

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'console/vite.config.ts', 'console/**/*.svelte', 'e2e/test-results/**', 'bench/results/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: { 'no-restricted-imports': ['error', { patterns: [deepImports] }] },
  },
  {
    // Types only for the packages' code, where the switches over frames and states are: building a
    // type-checked program for every test file too cost ~40% of the lint and found nothing a
    // test's switch (over numbers and characters) could miss.
    files: ['*/src/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: { '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }] },
  },
  {
    // The server may use the SDK package only for its wire protocol and its token module (the one
    // list of capabilities, and the one signer `sluice token` uses).
    files: ['server/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: '@sluice/client', message: 'The gateway imports only @sluice/client/protocol and @sluice/client/token.' }],
        patterns: [deepImports, {
          group: ['@sluice/client/*', '!@sluice/client/protocol', '!@sluice/client/token'],
          message: 'The gateway imports only @sluice/client/protocol and @sluice/client/token.',
        }],
      }],
    },
  },
  {
    // The protocol module stands alone: nothing from the rest of the SDK.
    files: ['client-sdk/src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [deepImports, { group: ['../*', '!../protocol'], message: 'The protocol module imports only msgpackr and itself.' }] }],
    },
  },
  {
    // The console talks to the gateway over HTTP/WS only.
    files: ['console/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [deepImports, { group: ['@sluice/server', '@sluice/server/*'], message: 'The console never imports the server.' }] }],
    },
  },
);
