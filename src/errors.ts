// Error catalogue: every error we raise carries a stable code, a message with its context,
// and the cause it wraps. Expected runtime failures are outcomes, not exceptions; these are
// for the places that do throw (bad config, bad dtab, startup failures).

export type ErrorCode =
  | 'CONFIG_INVALID' // the config file decoded but has problems (each named by key path)
  | 'CONFIG_UNREADABLE' // the file could not be read or parsed as YAML/JSON
  | 'DTAB_PARSE' // a dtab, path or name tree did not parse
  | 'NAMING' // a name could not be bound (max depth, unknown namer...)
  | 'LISTEN' // a listener could not bind
  | 'TLS_MATERIAL'; // a certificate or key file is missing, unreadable or mismatched

export class LinkerdTcpError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LinkerdTcpError';
    this.code = code;
  }
}
