// The ACL users shipped in deploy/redis/caelum-acl.conf, made usable by a test: each user's
// password hash put in, the key and channel patterns set to the test's prefix.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './fleet.js';

export const SHIPPED_ACL = path.join(REPO_ROOT, 'deploy/redis/caelum-acl.conf');
const ZEROS = /#0{64}/;

/** The shipped `user <name> …` line of one user, for this prefix and password. */
export function shippedUser(name: 'caelum' | 'replica' | 'sentinel', prefix: string, password: string): string {
  const line = readFileSync(SHIPPED_ACL, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`user ${name} `));
  if (!line || !ZEROS.test(line)) throw new Error(`${SHIPPED_ACL} has no "user ${name}" line with a hash to fill in`);
  return line
    .replace(ZEROS, `#${createHash('sha256').update(password).digest('hex')}`)
    .replaceAll('~caelum:*', `~${prefix}:*`)
    .replaceAll('&caelum:*', `&${prefix}:*`);
}
