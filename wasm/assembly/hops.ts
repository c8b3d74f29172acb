// The x-multiplane-hops header: a comma-separated list of node ids a request passed through.

/** Whether `list` contains `id` as one element (spaces around elements ignored). */
export function hasHop(list: string, id: string): bool {
  let start = 0;
  while (start <= list.length) {
    let end = list.indexOf(",", start);
    if (end < 0) end = list.length;
    if (list.substring(start, end).trim() == id) return true;
    start = end + 1;
  }
  return false;
}
