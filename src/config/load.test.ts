import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LinkerdTcpError } from '../errors.ts';
import { parseConfig } from './load.ts';

const MIN = `
routers:
- label: default
  dtab: /svc => /$/inet/127.0.0.1/8080;
  servers:
  - port: 7474
    dstName: /svc/default
`;

/** The message parseConfig throws for `text`, or '' when it is valid. */
function problems(text: string): string {
  try {
    parseConfig(text, 'c.yml');
    return '';
  } catch (e) {
    assert.ok(e instanceof LinkerdTcpError, `unexpected error type: ${String(e)}`);
    return e.message;
  }
}

describe('config: good configs and their defaults', () => {
  it('applies linkerd-tcp defaults', () => {
    const c = parseConfig(MIN, 'c.yml');
    assert.equal(c.workers, undefined);
    assert.equal(c.bufferSizeBytes, 16384);
    assert.deepEqual(c.admin, { ip: '127.0.0.1', port: 9989, metricsIntervalSecs: 60, graceSecs: 10, allowedHosts: [] });
    const r = c.routers[0]!;
    assert.deepEqual(r.interpreter, { kind: 'default' });
    assert.deepEqual(r.client, { kind: 'io.l5d.global' });
    assert.deepEqual(r.servers[0], {
      ip: '127.0.0.1', port: 7474, dstName: '/svc/default', connectTimeoutMs: undefined,
      connectionLifetimeSecs: undefined, idleTimeoutMs: undefined, maxConcurrency: 100000, tls: undefined,
    });
  });

  it('reads JSON when the text starts with {', () => {
    const c = parseConfig(JSON.stringify({ routers: [{ label: 'j', dtab: '/s=>/$/inet/1.2.3.4/1', servers: [{ port: 1, dstName: '/s' }] }] }), 'c.json');
    assert.equal(c.routers[0]!.label, 'j');
  });

  it('reads linkerd-tcp README example (namerd interpreter, TLS, static client)', () => {
    const c = parseConfig(`
admin: {port: 9989, ip: 0.0.0.0, metricsIntervalSecs: 10}
routers:
  - label: default
    interpreter: {kind: io.l5d.namerd.http, baseUrl: "http://localhost:4180", namespace: default, periodSecs: 20}
    servers:
      - {port: 7474, dstName: /svc/default, connectTimeoutMs: 500}
      - port: 7575
        ip: 0.0.0.0
        dstName: /svc/google
        tls:
          defaultIdentity: {privateKey: private.pem, certs: [cert.pem, ca-chain.cert.pem]}
    client:
      kind: io.l5d.static
      configs:
        - prefix: /svc/google
          connectTimeoutMs: 400
          tls: {dnsName: "www.google.com", trustCerts: [ca-chain.cert.pem]}
`, 'c.yml');
    assert.deepEqual(c.routers[0]!.interpreter, {
      kind: 'io.l5d.namerd.http', baseUrl: 'http://localhost:4180', namespace: 'default', periodSecs: 20, watch: false, requestTimeoutMs: 10000, mode: 'resolve',
    });
    assert.deepEqual(c.routers[0]!.client, {
      kind: 'io.l5d.static',
      configs: [{ prefix: '/svc/google', connectTimeoutMs: 400, tls: { dnsName: 'www.google.com', trustCerts: ['ca-chain.cert.pem'], clientIdentity: undefined } }],
    });
    assert.equal(c.admin.ip, '0.0.0.0');
  });

  it('accepts every client connector key', () => {
    const c = parseConfig(MIN + `  client:
    kind: io.l5d.global
    connectTimeoutMs: 300
    minConnections: 2
    maxWaiters: 10
    failFast: {maxConsecutiveFailures: 3}
`, 'c.yml');
    assert.deepEqual(c.routers[0]!.client, {
      kind: 'io.l5d.global', connectTimeoutMs: 300, minConnections: 2, maxWaiters: 10,
      failFast: { maxConsecutiveFailures: 3, failurePenaltySecs: 60 },
    });
  });
});

describe('config: every problem, with file and key path', () => {
  const table: { name: string; text: string; message: string }[] = [
    {
      name: 'port not an integer',
      text: MIN.replace('port: 7474', 'port: abc'),
      message: 'c.yml: routers[0].servers[0].port: expected an integer 0–65535, got "abc"',
    },
    {
      name: 'port out of range',
      text: MIN.replace('port: 7474', 'port: 70000'),
      message: 'c.yml: routers[0].servers[0].port: expected an integer 0–65535, got 70000',
    },
    {
      name: 'unknown key',
      text: MIN.replace('dstName:', 'dstname: /x\n    dstName:'),
      message: 'c.yml: routers[0].servers[0].dstname: unknown key (expected one of: ip, port, dstName, connectTimeoutMs, connectionLifetimeSecs, idleTimeoutMs, maxConcurrency, tls, handshakeTimeoutMs, defaultDstName, proxyProtocol)',
    },
    {
      name: 'several problems at once',
      text: `
admin: {port: -1, ip: localhost}
routers:
- label: ""
  dtab: /svc => /$/inet/127.0.0.1/8080;
  servers:
  - {dstName: svc}
`,
      message: [
        'c.yml: routers[0].label: expected a non-empty string',
        'c.yml: routers[0].servers[0].port: missing required key',
        'c.yml: routers[0].servers[0].dstName: expected a path starting with \'/\', got "svc"',
        'c.yml: admin.ip: expected an IP address (e.g. 127.0.0.1 or ::1), got "localhost"',
        'c.yml: admin.port: expected an integer 0–65535, got -1',
      ].join('\n'),
    },
    { name: 'no routers', text: 'admin: {port: 1}', message: 'c.yml: routers: missing required key' },
    { name: 'empty routers', text: 'routers: []', message: 'c.yml: routers: expected at least one router' },
    { name: 'not a map', text: '- 1\n- 2', message: 'c.yml: (top level): expected a map, got a list' },
    {
      name: 'unknown interpreter kind',
      text: MIN.replace('  dtab:', '  interpreter: {kind: io.l5d.mesh}\n  dtab:'),
      message: 'c.yml: routers[0].interpreter.kind: expected one of: default, io.l5d.namerd.http; got "io.l5d.mesh"',
    },
    {
      name: 'namerd interpreter missing keys',
      text: MIN.replace('  dtab:', '  interpreter: {kind: io.l5d.namerd.http, baseUrl: "ftp://x", periodSecs: 0}\n  dtab:'),
      message: [
        'c.yml: routers[0].interpreter.baseUrl: expected an http(s) URL, got "ftp://x"',
        'c.yml: routers[0].interpreter.namespace: missing required key',
        'c.yml: routers[0].interpreter.periodSecs: expected an integer ≥ 1, got 0',
      ].join('\n'),
    },
    {
      name: 'default interpreter without dtab',
      text: MIN.replace(/ {2}dtab:.*\n/, ''),
      message: 'c.yml: routers[0].dtab: missing: a router with the default interpreter needs a dtab (e.g. "/svc => /$/inet/127.0.0.1/8080;")',
    },
    {
      name: 'bad dtab',
      text: MIN.replace('/svc => /$/inet/127.0.0.1/8080;', '"/svc => invalid"'),
      message: "c.yml: routers[0].dtab: invalid dtab: '/' expected but 'i' found at '/svc => [i]nvalid'",
    },
    {
      name: 'global client with prefix',
      text: MIN + '  client: {kind: io.l5d.global, prefix: /svc}\n',
      message: 'c.yml: routers[0].client.prefix: not allowed with kind io.l5d.global (use io.l5d.static)',
    },
    {
      name: 'static client config without prefix',
      text: MIN + '  client: {kind: io.l5d.static, configs: [{connectTimeoutMs: 1}]}\n',
      message: 'c.yml: routers[0].client.configs[0].prefix: missing required key',
    },
    {
      name: 'client tls without dnsName',
      text: MIN + '  client: {tls: {trustCerts: [a.pem]}}\n',
      message: 'c.yml: routers[0].client.tls.dnsName: missing required key',
    },
    {
      name: 'server tls without identity',
      text: MIN.replace('dstName: /svc/default', 'dstName: /svc/default\n    tls: {alpnProtocols: [h2]}'),
      message: 'c.yml: routers[0].servers[0].tls: expected defaultIdentity or identities',
    },
    {
      name: 'server tls: bad SNI name, mTLS without roots, bad timeout',
      text: MIN.replace('dstName: /svc/default', 'dstName: /svc/default\n    tls: {identities: {"bad name!": {privateKey: k, certs: [c]}}, clientAuth: {required: false}, handshakeTimeoutMs: 0}'),
      message: [
        'c.yml: routers[0].servers[0].tls.identities.bad name!: expected a DNS name such as foo.example.com or *.example.com',
        'c.yml: routers[0].servers[0].tls.handshakeTimeoutMs: expected an integer ≥ 1, got 0',
        'c.yml: routers[0].servers[0].tls.clientAuth.trustCerts: missing required key',
      ].join('\n'),
    },
    {
      name: 'client tls: clientIdentity without certs',
      text: MIN + '  client: {tls: {dnsName: x, clientIdentity: {privateKey: k}}}\n',
      message: 'c.yml: routers[0].client.tls.clientIdentity.certs: missing required key',
    },
    {
      name: 'YAML alias bomb',
      text: 'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
      message: 'c.yml: invalid YAML: Excessive alias count indicates a resource exhaustion attack',
    },
    {
      name: 'duplicate listen address and label',
      text: MIN + MIN.replace('routers:\n', ''),
      message: [
        'c.yml: routers[1].label: duplicate router label "default" (also routers[0])',
        'c.yml: routers[1].servers[0].port: 127.0.0.1:7474 is already used by routers[0].servers[0]',
      ].join('\n'),
    },
    { name: 'bufferSizeBytes too small', text: 'bufferSizeBytes: 10\n' + MIN, message: 'c.yml: bufferSizeBytes: expected an integer 1024–16777216, got 10' },
    { name: 'YAML syntax error', text: 'routers: [', message: 'c.yml: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 11:' },
    { name: 'JSON syntax error', text: '{"routers": ', message: 'c.yml: invalid JSON: Unexpected end of JSON input' },
    { name: 'empty file', text: '', message: 'c.yml: the config is empty' },
  ];
  for (const { name, text, message } of table) {
    it(name, () => assert.equal(problems(text), message));
  }
});
