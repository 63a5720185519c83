/** The machine's processes, as /proc tells them: whether one is alive, and what a process started. */
import * as fs from "node:fs";

/** Whether a process with this pid exists and may be signalled by us (a pid file's owner, a marker's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface ProcessEntry {
  readonly pid: number;
  readonly ppid: number;
  /** Resident memory. */
  readonly rssBytes: number;
  /** The executable's name (`comm`, at most 15 characters). */
  readonly name: string;
  /** CPU time used so far, user and system. */
  readonly cpuSeconds: number;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** Every process, read from /proc/<pid>/stat (those that end while being read are left out). */
export function processes(): ProcessEntry[] {
  const out: ProcessEntry[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.push({
        pid: Number(entry),
        ppid: Number(fields[1]),
        rssBytes: Number(fields[21]) * 4096,
        name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
        cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS,
      });
    } catch {
      // the process ended while being read
    }
  }
  return out;
}

/** Every process below `root`, whatever its process group (the engine starts its plugins in groups of their own). */
export function descendants(root: number, table: readonly ProcessEntry[] = processes()): ProcessEntry[] {
  const children = new Map<number, ProcessEntry[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: ProcessEntry[] = [];
  for (const todo = [root]; todo.length > 0;) {
    for (const c of children.get(todo.pop() as number) ?? []) {
      out.push(c);
      todo.push(c.pid);
    }
  }
  return out;
}
