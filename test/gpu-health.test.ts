// GPU health from text: nvidia-smi's `--query-gpu` answers (real shapes, [N/A] fields, garbage),
// the judgement with its temperature hysteresis, the kernel log's XID lines, and the following of
// a kernel log file (in a temp folder of this file) through appends, rotation and truncation.
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HEALTH_FIELDS, judge, normalizeBusId, parseHealthAnswer, parseXid, readingFor, rejectedField } from '../src/workers/gpu-health.js';
import { KernelLogTail } from '../src/workers/kernel-log.js';
import { testLogger } from './helpers/logger.js';

const limits = { maxTemperatureC: 85, temperatureHysteresisC: 5 };
const UUID0 = 'GPU-5c1b8a2e-0000-4000-8000-000000000000';
const UUID1 = 'GPU-5c1b8a2e-0001-4000-8000-000000000000';

describe('parseHealthAnswer', () => {
  it('reads each GPU, taking [N/A] and [Not Supported] as no value', () => {
    const csv = [
      `0, ${UUID0}, 00000000:3B:00.0, 0, No, No, 61`,
      `1, ${UUID1}, 00000000:AF:00.0, [N/A], [N/A], [Not Supported], 48`,
    ].join('\n');
    expect(parseHealthAnswer(csv, HEALTH_FIELDS)).toEqual({
      readings: [
        { index: 0, uuid: UUID0, busId: '0000:3b:00', uncorrectedEcc: 0, retiredPagesPending: false, remapFailure: false, temperatureC: 61 },
        { index: 1, uuid: UUID1, busId: '0000:af:00', temperatureC: 48 },
      ],
      unreachable: [],
    });
  });

  it('skips lines that are not a GPU and values that are garbage', () => {
    const csv = [
      '',
      'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.',
      `0, ${UUID0}, 00000000:3B:00.0, 3, Yes, Maybe, hot`,
      `x, ${UUID1}, 00000000:AF:00.0, 0, No, No, 40`,
      `2, ${UUID1}, 00000000:AF:00.0, 0, No`,
      `3, not-a-uuid, nonsense, -1, [GPU requires reset], Yes, 1e9`,
    ].join('\n');
    expect(parseHealthAnswer(csv, HEALTH_FIELDS).readings).toEqual([
      { index: 0, uuid: UUID0, busId: '0000:3b:00', uncorrectedEcc: 3, retiredPagesPending: true },
      { index: 3, remapFailure: true },
    ]);
  });

  it('follows the fields it asked for, when some were dropped', () => {
    const fields = HEALTH_FIELDS.filter((f) => f !== 'remapped_rows.failure');
    expect(parseHealthAnswer(`0, ${UUID0}, 00000000:3B:00.0, 0, No, 90`, fields).readings).toEqual([
      { index: 0, uuid: UUID0, busId: '0000:3b:00', uncorrectedEcc: 0, retiredPagesPending: false, temperatureC: 90 },
    ]);
  });

  it('names the GPUs nvidia-smi cannot reach, by bus id or index', () => {
    const out = [
      'Unable to determine the device handle for GPU0000:CB:00.0: Unknown Error',
      'Unable to determine the device handle for GPU1: 0000:34:00.0: Unknown Error',
      'Unable to determine the device handle for GPU 2: Unknown Error',
    ].join('\n');
    expect(parseHealthAnswer(out, HEALTH_FIELDS).unreachable.map(({ busId, index }) => ({ busId, index }))).toEqual([
      { busId: '0000:cb:00', index: undefined },
      { busId: '0000:34:00', index: undefined },
      { busId: undefined, index: 2 },
    ]);
  });

  it('finds the field an older driver refuses', () => {
    expect(rejectedField('Field "remapped_rows.failure" is not a valid field to query.\n')).toBe('remapped_rows.failure');
    expect(rejectedField('NVIDIA-SMI has failed')).toBeUndefined();
  });
});

describe('readingFor', () => {
  const answer = parseHealthAnswer([`0, ${UUID1}, 00000000:AF:00.0, 0, No, No, 40`].join('\n'), HEALTH_FIELDS).readings;
  const ours = new Set([UUID0, UUID1]);

  it('matches by UUID, not by an index nvidia-smi gave another GPU after one dropped out', () => {
    expect(readingFor({ index: 1, name: 'g', memoryMiB: 1, uuid: UUID1 }, answer, ours)?.index).toBe(0);
    expect(readingFor({ index: 0, name: 'g', memoryMiB: 1, uuid: UUID0 }, answer, ours)).toBeUndefined();
  });

  it('matches by index when the worker knows no UUID of its own there', () => {
    expect(readingFor({ index: 0, name: 'g', memoryMiB: 1 }, answer, new Set())?.uuid).toBe(UUID1);
  });
});

describe('judge', () => {
  const reading = (r: Partial<Parameters<typeof judge>[0]>) => ({ index: 0, ...r });

  it('fails uncorrectable ECC errors, pending retired pages, a failed remapping, heat', () => {
    expect(judge(reading({ uncorrectedEcc: 1, retiredPagesPending: true, remapFailure: true, temperatureC: 86 }), {}, limits)).toEqual({
      ecc: '1 uncorrectable ECC error since the driver loaded',
      'retired-pages': 'retired pages pending: reset the GPU or reboot to retire them',
      'row-remapping': 'a row remapping failed: the GPU needs service',
      temperature: '86 °C, over the limit of 85 °C (leased again below 80 °C)',
    });
    expect(judge(reading({ uncorrectedEcc: 0, retiredPagesPending: false, remapFailure: false, temperatureC: 85 }), {}, limits)).toEqual({});
  });

  it('holds a hot GPU until it is below the limit minus the hysteresis, keeping the reason that tripped it', () => {
    const hot = judge(reading({ temperatureC: 91 }), {}, limits);
    const cooler = judge(reading({ temperatureC: 82 }), hot, limits);
    const atTheLine = judge(reading({ temperatureC: 80 }), cooler, limits);
    const cool = judge(reading({ temperatureC: 79 }), atTheLine, limits);
    expect([hot, cooler, atTheLine].map((f) => f.temperature)).toEqual(Array(3).fill('91 °C, over the limit of 85 °C (leased again below 80 °C)'));
    expect(cool).toEqual({});
    // A GPU that was never over the limit is not held at the same reading.
    expect(judge(reading({ temperatureC: 82 }), {}, limits)).toEqual({});
  });

  it('a value it lacks keeps the finding as it was: not failed, not cleared', () => {
    const failing = judge(reading({ uncorrectedEcc: 2, temperatureC: 90 }), {}, limits);
    expect(judge(reading({}), failing, limits)).toEqual(failing);
    expect(judge(reading({}), {}, limits)).toEqual({});
  });
});

describe('XID lines', () => {
  it('reads the bus id and the XID of the forms the driver writes', () => {
    expect(parseXid('Mar  3 10:00:01 gpu-44 kernel: [ 4909.92] NVRM: Xid (PCI:0000:3b:00): 79, pid=1896, GPU has fallen off the bus.')).toEqual({ busId: '0000:3b:00', xid: 79 });
    expect(parseXid('kernel: NVRM: Xid (0000:01:00): 13, 0005 00000000 0000502d')).toEqual({ busId: '0000:01:00', xid: 13 });
    expect(parseXid('kernel: NVRM: GPU at PCI:0000:3b:00: GPU-5c1b8a2e')).toBeUndefined();
    expect(parseXid('NVRM: Xid (PCI:zz:3b:00): 79')).toBeUndefined();
  });

  it('normalises domain width and case, and drops the function', () => {
    expect(normalizeBusId('00000000:3B:00.0')).toBe('0000:3b:00');
    expect(normalizeBusId('PCI:0000:3b:00')).toBe('0000:3b:00');
    expect(normalizeBusId('0001:AF:1C.1')).toBe('0001:af:1c');
    expect(normalizeBusId('[N/A]')).toBeUndefined();
  });
});

describe('KernelLogTail', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-kernlog-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads what is written after it starts, a line once it ends, through rotation and truncation', async () => {
    const file = path.join(dir, 'kern.log');
    writeFileSync(file, 'old line before the worker started\n');
    const tail = new KernelLogTail(file, testLogger);
    try {
      await tail.start();
      expect(await tail.read()).toEqual([]);
      appendFileSync(file, 'one\ntw');
      expect(await tail.read()).toEqual(['one']);
      appendFileSync(file, 'o\nthree\n');
      expect(await tail.read()).toEqual(['two', 'three']);

      // logrotate: the file is renamed after one more line, and a new one starts under the name.
      appendFileSync(file, 'last of the old file\n');
      renameSync(file, `${file}.1`);
      writeFileSync(file, 'first of the new file\n');
      expect(await tail.read()).toEqual(['last of the old file', 'first of the new file']);

      // copytruncate: emptied in place, then written again.
      writeFileSync(file, '');
      expect(await tail.read()).toEqual([]);
      appendFileSync(file, 'after truncation\n');
      expect(await tail.read()).toEqual(['after truncation']);

      // Gone (and unreadable): nothing, no throw; back: from its end.
      await tail.close();
      rmSync(file);
      rmSync(`${file}.1`);
      expect(await tail.read()).toEqual([]);
      writeFileSync(file, 'written while it was unreadable\n');
      expect(await tail.read()).toEqual([]);
      appendFileSync(file, 'new\n');
      expect(await tail.read()).toEqual(['new']);
    } finally {
      await tail.close();
    }
  });
});
