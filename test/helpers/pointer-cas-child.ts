// A child process of the FilePointerStore concurrency test: plays rounds of compare-and-swap
// on one table's pointer against its siblings and prints the rounds it won as JSON.
// Round r moves the pointer from a value 'r:...' to 'r+1:<child id>'.

import { FilePointerStore } from '../../runtime/catalog/iceberg/file-pointer-store.ts';

const [dir, id, roundsText] = process.argv.slice(2);
const rounds = Number(roundsText);
const store = new FilePointerStore(dir);
const won: number[] = [];
let attempts = 0;
let current = await store.get('contended');
while (current !== undefined) {
  const round = Number(current.split(':')[0]);
  if (round >= rounds) break;
  attempts++;
  if (await store.compareAndSwap('contended', current, `${round + 1}:${id}`)) won.push(round);
  current = await store.get('contended');
}
process.stdout.write(JSON.stringify({ id, won, attempts }));
