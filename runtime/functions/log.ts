// Structured logs of the Lambda adapters, one JSON line per invocation as Powertools would
// write it: level, message, the query id as correlation id, the cold-start flag and the
// duration. Silent outside Lambda unless a sink is given, so local runs and tests stay quiet.

export interface InvocationLog {
  level: 'info' | 'error';
  message: string;
  function: string;
  queryId?: string;
  coldStart: boolean;
  durationMs: number;
  [field: string]: unknown;
}

export type LogSink = (line: string) => void;

export function lambdaLogSink(): LogSink | undefined {
  return process.env.AWS_LAMBDA_FUNCTION_NAME ? (line) => console.log(line) : undefined;
}

export function writeLog(sink: LogSink | undefined, entry: InvocationLog): void {
  sink?.(JSON.stringify({ timestamp: new Date().toISOString(), ...entry }));
}

/** Tracks the first invocation of a container. */
export class ColdStart {
  private cold = true;

  /** True on the first call only. */
  take(): boolean {
    const was = this.cold;
    this.cold = false;
    return was;
  }
}
