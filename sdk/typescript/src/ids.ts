// Run ids made by the client, so that a batch sent twice (a retry after a lost answer) is stored once. They have
// the server's shape: `run_` + a lowercase ULID (48-bit time, then 80 random bits, Crockford base 32), so runs
// recorded by the SDK sort by time among the server's own.
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

export function newRunId(now: number = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = new Uint8Array(16);
  crypto.getRandomValues(random);
  let tail = "";
  for (const byte of random) tail += ALPHABET[byte & 31];
  return `run_${time}${tail}`;
}
