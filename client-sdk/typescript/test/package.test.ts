// The package as a user gets it: `npm pack`, the tarball installed into a scratch app, then
// required, imported and type-checked there, and one call made against the live core.
//
// Needs KAPSO_CORE_ADDR (run by client-sdk/scripts/test-sdks.sh) and npm; the SDK's own
// dependencies come from npm's cache when `npm ci` ran before.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';

const CORE = process.env.KAPSO_CORE_ADDR ?? '';
/** dist/test/ -> the package's directory. */
const SDK_DIR = path.resolve(__dirname, '..', '..');
const COMMAND_TIMEOUT_MS = 300_000;

function run(command: string, args: string[], cwd: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
}

let scratch: string;
let app: string;
let packedFiles: string[];

before(() => {
  assert.ok(CORE, 'KAPSO_CORE_ADDR is not set (run client-sdk/scripts/test-sdks.sh)');
  scratch = mkdtempSync(path.join(tmpdir(), 'kapso-ts-package-'));
  // --ignore-scripts: dist/ is already built for this run, and prepack would rebuild it
  // underneath the running tests.
  const [packed] = JSON.parse(
    run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], SDK_DIR),
  );
  packedFiles = packed.files.map((file: { path: string }) => file.path);
  app = path.join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error',
    path.join(scratch, packed.filename)], app);
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('the tarball holds the built code, its declarations and the proto files it loads', () => {
  for (const proto of ['content', 'types', 'ingest', 'messaging']) {
    assert.ok(packedFiles.includes(`proto/kapso/gateway/v1/${proto}.proto`), `${proto}.proto missing`);
  }
  for (const file of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/content.js', 'package.json', 'README.md']) {
    assert.ok(packedFiles.includes(file), `${file} missing`);
  }
  assert.ok(!packedFiles.some((file) => file.startsWith('dist/test/')), 'tests are not shipped');
});

test('require() of the installed package calls the core', () => {
  writeFileSync(path.join(app, 'main.cjs'), `
const { Client, template } = require('@kapso-gateway/client');
const client = new Client(process.argv[2]);
client.getMessage('wamid.package-probe').then(
  () => { console.log('found'); client.close(); },
  (error) => { console.log(error.code, template('x', 'es').template.name); client.close(); },
);
`);
  // 5: grpc.status.NOT_FOUND, the core's answer for an unknown id.
  assert.equal(run(process.execPath, ['main.cjs', CORE], app).trim(), '5 x');
});

test('import of the installed package works from an ES module', () => {
  writeFileSync(path.join(app, 'main.mjs'), `
import { Client, interactive } from '@kapso-gateway/client';
const client = new Client(process.argv[2]);
const consumers = await client.listConsumers();
console.log(Array.isArray(consumers), interactive.buttons('b', [['y', 'Sí']]).interactive.buttons.buttons[0].id);
client.close();
`);
  assert.equal(run(process.execPath, ['main.mjs', CORE], app).trim(), 'true y');
});

test('an app type-checks against the installed declarations', () => {
  writeFileSync(path.join(app, 'main.ts'), `
import { Client, media, type Message, type MessageStatus } from '@kapso-gateway/client';
async function send(client: Client): Promise<MessageStatus> {
  const sent: Message = await client.sendMessage(media.image('https://cdn.example.com/a.jpg'), { to: '1' });
  return sent.status;
}
// @ts-expect-error a status is one of the contract's names
const wrong: MessageStatus = 'READ';
export { send, wrong };
`);
  writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, module: 'commonjs', moduleResolution: 'node', target: 'ES2022',
      typeRoots: [path.join(SDK_DIR, 'node_modules', '@types')], types: ['node'],
    },
    files: ['main.ts'],
  }));
  run(process.execPath, [path.join(SDK_DIR, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
});
