// Config files for a one-node OpenStack Swift (Debian 12's 2.30.1) with the s3api middleware, as
// test/support/swift.ts runs it: every server on 127.0.0.1, one process each (`workers = 0`), one
// device, rings with one replica. The settings are the minimal set verified to work with s3api, plus a memcached of
// our own and a swift.conf that is really read (see SERVER_WRAPPER).

export type SwiftRole = 'proxy' | 'account' | 'container' | 'object';

export interface SwiftPorts {
  proxy: number;
  account: number;
  container: number;
  object: number;
  /** tempauth keeps S3 auth state in memcache and fails every request without one. */
  memcached: number;
}

export interface SwiftLayout {
  /** Holds the rings (`swift_dir`). */
  swiftDir: string;
  /** Parent of the single device directory `d1` (`devices`). */
  devicesDir: string;
  ports: SwiftPorts;
  /** The servers switch to this user at start; the current one, so nothing changes. */
  user: string;
}

/** Tempauth user `test:tester` with password `testing` is the S3 access key and secret. */
export const SWIFT_ACCESS_KEY_ID = 'test:tester';
export const SWIFT_SECRET_ACCESS_KEY = 'testing';
export const SWIFT_DEVICE = 'd1';

function defaults(layout: SwiftLayout, role: SwiftRole): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${layout.ports[role]}
# One process per server: the PID the harness spawned is the one serving, so stop() can kill it.
workers = 0
user = ${layout.user}
swift_dir = ${layout.swiftDir}
devices = ${layout.devicesDir}
# The device is a plain directory, not a mount point.
mount_check = false
log_name = ${role}
`;
}

function backendConf(layout: SwiftLayout, role: Exclude<SwiftRole, 'proxy'>): string {
  // Only the WSGI server: no replicators, auditors or updaters (one replica, short-lived data), and no
  // `recon` middleware (monitoring; it would look for its cache under /var/cache/swift).
  return `${defaults(layout, role)}
[pipeline:main]
pipeline = healthcheck ${role}-server

[app:${role}-server]
use = egg:swift#${role}

[filter:healthcheck]
use = egg:swift#healthcheck
`;
}

/** Pipeline members used with their defaults; the egg entry point is the name with `_` for `-`. */
const PLAIN_FILTERS = ['catch_errors', 'gatekeeper', 'healthcheck', 'proxy-logging', 'listing_formats', 'copy', 'dlo'];

function proxyConf(layout: SwiftLayout): string {
  return `${defaults(layout, 'proxy')}
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
# Creates the S3 user's Swift account (AUTH_test) on first use: no account set-up step.
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
# The region clients must sign for (s3api's default, stated because SwiftServer promises it).
location = us-east-1
# S3 allows 10,000 parts per upload; s3api defaults to 1,000 and SLO to 1,000 segments.
max_upload_part_num = 10000

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = ${SWIFT_SECRET_ACCESS_KEY} .admin

[filter:cache]
use = egg:swift#memcache
# Our own memcached: a shared one would mix cached account/container info between Swifts running
# side by side (tests run files concurrently). tempauth refuses to work without memcache.
memcache_servers = 127.0.0.1:${layout.ports.memcached}

${PLAIN_FILTERS.map((name) => `[filter:${name}]\nuse = egg:swift#${name.replace('-', '_')}\n`).join('\n')}`;
}

/** Every `<role>-server.conf`, by file name. */
export function swiftConfFiles(layout: SwiftLayout): Record<string, string> {
  return {
    'proxy-server.conf': proxyConf(layout),
    'account-server.conf': backendConf(layout, 'account'),
    'container-server.conf': backendConf(layout, 'container'),
    'object-server.conf': backendConf(layout, 'object'),
  };
}

/**
 * Builds the three rings in one Python process (running `swift-ring-builder` create/add/rebalance per
 * ring would start nine). Part power 6 is plenty for one device; min_part_hours 1 is irrelevant here.
 * Run with Debian's /usr/bin/python3: another python3 on PATH (pyenv, venv) lacks the swift module.
 */
export function ringBuilderScript(layout: SwiftLayout): string {
  const rings = (['account', 'container', 'object'] as const).map(
    (role) => `(${JSON.stringify(role)}, ${layout.ports[role]})`,
  );
  return `
from swift.common.ring import RingBuilder
for name, port in [${rings.join(', ')}]:
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
                     'device': ${JSON.stringify(SWIFT_DEVICE)}, 'weight': 100})
    builder.rebalance()
    builder.get_ring().save(${JSON.stringify(layout.swiftDir)} + '/' + name + '.ring.gz')
`;
}

/**
 * swift.conf: the hash prefix/suffix that place objects on the ring, and the single storage policy.
 * Swift reads /etc/swift/swift.conf whatever `swift_dir` says; SERVER_WRAPPER points it here
 * so the package's copy (or an admin's edits to it, such as extra policies) never matters.
 */
export function swiftConf(hashSecret: string): string {
  return `[swift-hash]
swift_hash_path_prefix = ${hashSecret}
swift_hash_path_suffix = ${hashSecret}

[storage-policy:0]
name = Policy-0
default = yes
`;
}

/**
 * Runs a program inside a Python that first asks the kernel to SIGKILL it when its parent (the test
 * process) dies, however that happens: a test runner timeout, SIGKILL, a crash. Swift's servers call
 * setsid(), so signals sent to the test's process group never reach them otherwise.
 * argv: <expected parent pid> swift <swift_dir> <server script> <conf> -v
 *   runs the server in this same process (PID unchanged) after making Swift read swift.conf from our
 *   `swift_dir` instead of /etc/swift (see swiftConf); -v logs to stderr.
 * argv: <expected parent pid> exec <program> <args…>
 *   execs the program (the death signal survives execve).
 */
export const SERVER_WRAPPER = `
import ctypes, os, runpy, signal, sys
PR_SET_PDEATHSIG = 1
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
if os.getppid() != int(sys.argv[1]):
    sys.exit('parent already gone')
if sys.argv[2] == 'exec':
    os.execv(sys.argv[3], sys.argv[3:])
from swift.common import storage_policy, utils
utils.set_swift_dir(sys.argv[3])
storage_policy.reload_storage_policies()
sys.argv = sys.argv[4:]
runpy.run_path(sys.argv[0], run_name='__main__')
`;
