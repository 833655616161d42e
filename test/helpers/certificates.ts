// Certificates made with openssl in the test's own folder: a certificate authority, server
// certificates for the names a test chooses, and client certificates, all signed by that CA.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';

export interface Certificate {
  cert: string;
  key: string;
}

export interface TestCa {
  dir: string;
  /** The CA's certificate (PEM file): what clients and servers verify against. */
  ca: string;
  /** A certificate for `subject` (a CN) with these subjectAltNames (`DNS:localhost`, `IP:127.0.0.1`). */
  issue(name: string, subject: string, altNames?: string[]): Promise<Certificate>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(dir: string, args: string[]): Promise<void> {
  const res = await execa('openssl', args, { cwd: dir, reject: false });
  if (res.exitCode !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${res.stderr}`);
}

/** A new CA in `dir`. */
export async function makeCa(dir: string, name = 'caelum test CA'): Promise<TestCa> {
  const ca = path.join(dir, `${name.replace(/\W+/g, '-')}.crt`);
  const caKey = ca.replace(/\.crt$/, '.key');
  await openssl(dir, ['req', '-x509', ...EC, '-keyout', caKey, '-out', ca, '-days', '2', '-subj', `/CN=${name}`]);
  return {
    dir,
    ca,
    async issue(file, subject, altNames = []) {
      const cert = path.join(dir, `${file}.crt`);
      const key = path.join(dir, `${file}.key`);
      const csr = path.join(dir, `${file}.csr`);
      const ext = path.join(dir, `${file}.ext`);
      await openssl(dir, ['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${subject}`]);
      writeFileSync(ext, altNames.length ? `subjectAltName=${altNames.join(',')}\n` : 'basicConstraints=CA:FALSE\n');
      await openssl(dir, ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
      return { cert, key };
    },
  };
}
