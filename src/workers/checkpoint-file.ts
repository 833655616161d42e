// A checkpoint a child reports is a regular file inside the folders the config gives that job,
// reached through no symbolic link (src/contained-files.ts); its size and sha256 are computed
// here, by the worker, from a descriptor opened without following links, not taken from the
// child. The file is made read-only before it is measured, so what was hashed is what stays.
import path from 'node:path';
import { digestOf, openInside } from '../contained-files.js';

export interface CheckpointFile {
  path: string;
  sizeBytes: number;
  sha256: string;
}

export async function describeCheckpoint(reported: string, cwd: string, allowedDirs: string[]): Promise<CheckpointFile> {
  const absolute = path.resolve(cwd, reported);
  const handle = await openInside(absolute, allowedDirs).catch((err: unknown) => {
    throw new Error(`checkpoint ${reported} refused: ${(err as Error).message}`, { cause: err });
  });
  try {
    await handle.chmod(0o444);
    return { path: absolute, ...(await digestOf(handle)) };
  } finally {
    await handle.close();
  }
}
