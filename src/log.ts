import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Field paths pino blanks even if one were ever passed by mistake. This is the second line of
 * defence: the first is that secret values and tokens are never handed to the logger at all.
 */
const REDACT_PATHS = [
  'secrets',
  '*.secrets',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'clientSecret',
  '*.clientSecret',
  'authorization',
  '*.authorization',
  'headers.authorization',
];

export interface LoggerOptions {
  level?: string;
  /** Where JSON lines go; standard output when absent. Tests pass a capturing stream. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { app: 'podvault' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
