// Follows a text kernel log (rsyslog's /var/log/kern.log) for the lines written since the last
// read, starting where it ended when the worker started: what was logged before cannot be dated
// without parsing every syslog format, and old XIDs would hold GPUs for nothing.
//
// Rotation (a new file under the name, logrotate's default) is seen by the inode: the rest of
// the old file is read through the descriptor still open on it, then the new one from its start.
// Truncation in place (copytruncate) is seen by a size below the offset and starts over; lines
// written between the truncation and the next read that outgrow the old size are missed.
// A log that cannot be read is reported once, and read again when it can be, from its end.
import type { FileHandle } from 'node:fs/promises';
import { open, stat } from 'node:fs/promises';
import type { Logger } from '../logger.js';

/** More than this written between two reads: only the newest part is read. */
const MAX_READ_BYTES = 4 * 1024 * 1024;
const NEWLINE = 0x0a;

export class KernelLogTail {
  private handle: FileHandle | undefined;
  private inode = -1;
  private offset = 0;
  /** The bytes of a line not yet ended. */
  private partial = Buffer.alloc(0);
  private problem = '';

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.read();
  }

  /** The complete lines written since the last read; none when the log cannot be read. */
  async read(): Promise<string[]> {
    try {
      const lines = await this.follow();
      if (this.problem) this.log.info({ file: this.file }, 'reading the kernel log again');
      this.problem = '';
      return lines;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message !== this.problem) this.log.warn({ err, file: this.file }, 'cannot read the kernel log; XIDs are not checked until it can be read');
      this.problem = message;
      await this.closeHandle();
      return [];
    }
  }

  async close(): Promise<void> {
    await this.closeHandle();
  }

  private async follow(): Promise<string[]> {
    // While logrotate moves the file, the name may be missing for a moment: the open file stands.
    const named = await stat(this.file).catch((err: unknown) => {
      if (this.handle) return undefined;
      throw err;
    });
    if (!this.handle) {
      // First read, or after a failure: from the end.
      await this.openNamed(named!.size);
      return [];
    }
    if (!named || named.ino === this.inode) return this.readNew();
    const rest = await this.readNew();
    const unended = this.partial.length ? [this.partial.toString('utf8')] : [];
    await this.closeHandle();
    await this.openNamed(0);
    return [...rest, ...unended, ...(await this.readNew())];
  }

  private async openNamed(offset: number): Promise<void> {
    const handle = await open(this.file, 'r');
    try {
      this.inode = (await handle.stat()).ino;
    } catch (err) {
      await handle.close();
      throw err;
    }
    this.handle = handle;
    this.offset = offset;
    this.partial = Buffer.alloc(0);
  }

  private async readNew(): Promise<string[]> {
    const handle = this.handle!;
    const { size } = await handle.stat();
    if (size < this.offset) {
      this.offset = 0;
      this.partial = Buffer.alloc(0);
    }
    if (size - this.offset > MAX_READ_BYTES) {
      this.log.warn({ file: this.file, skippedBytes: size - this.offset - MAX_READ_BYTES }, 'the kernel log grew too fast to read all of it; reading its newest part');
      this.offset = size - MAX_READ_BYTES;
      this.partial = Buffer.alloc(0);
    }
    const chunk = Buffer.alloc(size - this.offset);
    let got = 0;
    while (got < chunk.length) {
      const { bytesRead } = await handle.read(chunk, got, chunk.length - got, this.offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    this.offset += got;
    const text = Buffer.concat([this.partial, chunk.subarray(0, got)]);
    const end = text.lastIndexOf(NEWLINE);
    this.partial = Buffer.from(text.subarray(end + 1));
    return end < 0 ? [] : text.subarray(0, end).toString('utf8').split('\n');
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => {});
  }
}
