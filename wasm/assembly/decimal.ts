// Whole numbers as decimal text, for messages. The standard library's toString() takes a radix and
// carries a digit table and range errors for it: about a kilobyte of module for this one use.
// (No `cond ? a : b` between strings here: assemblyscript 0.17 can release such a result twice.)

export function decimal(n: i64): string {
  let v: u64 = n < 0 ? <u64>(-n) : <u64>n; // -(-2^63) wraps to 2^63 as u64: still right
  let out = "";
  do {
    out = String.fromCharCode(<i32>(48 + v % 10)) + out;
    v /= 10;
  } while (v != 0);
  if (n < 0) out = "-" + out;
  return out;
}
