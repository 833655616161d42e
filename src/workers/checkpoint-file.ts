// A checkpoint a child reports is a file inside the folders the config gives that job; its size
// and sha256 are computed here, by the worker, not taken from the child.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { isInside } from '../paths.js';

export interface CheckpointFile {
  path: string;
  sizeBytes: number;
  sha256: string;
}

export async function describeCheckpoint(reported: string, cwd: string, allowedDirs: string[]): Promise<CheckpointFile> {
  const absolute = path.resolve(cwd, reported);
  if (!allowedDirs.some((dir) => isInside(absolute, dir))) {
    throw new Error(`checkpoint ${reported} is outside the job's folders (${allowedDirs.join(', ')})`);
  }
  const info = await stat(absolute).catch(() => undefined);
  if (!info?.isFile()) throw new Error(`checkpoint ${reported} does not exist or is not a file`);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(absolute)) hash.update(chunk as Buffer);
  return { path: absolute, sizeBytes: info.size, sha256: hash.digest('hex') };
}
