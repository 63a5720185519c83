/**
 * The Pulumi Node.js SDK records a stack trace for every promise it creates (runtime/debuggable,
 * for its leak report). With Node's source maps on (tsx turns them on) each trace is translated
 * frame by frame: at 50 services that was a third of the program's CPU in `up`, and most of
 * synth's. Programs run with stack capture off; nothing here prints those traces.
 */
let depth = 0;
let saved = Error.stackTraceLimit;

export async function withoutPromiseStacks<T>(f: () => Promise<T>): Promise<T> {
  if (depth++ === 0) {
    saved = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
  }
  try {
    return await f();
  } finally {
    if (--depth === 0) Error.stackTraceLimit = saved;
  }
}
