// Runs one benchmark by name: node --import tsx bench/quick.ts enqueue
const name = process.argv[2]!;
const mod = (await import(`./${name}.js`)) as Record<string, (b: number) => Promise<unknown>>;
const fn = Object.values(mod).find((f) => typeof f === 'function' && f.name.endsWith('Bench'))!;
console.log(JSON.stringify(await fn(Number(process.argv[3] || 60_000)), null, 1));
process.exit(0);
