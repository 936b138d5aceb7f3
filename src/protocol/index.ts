// sanlock's wire protocol in one import: header, payload structs, command table and daemon-side
// framing, client-side reply decoding, resource/lockspace strings. See each file's header.
export * from './header.js';
export * from './structs.js';
export * from './commands.js';
export * from './replies.js';
export * from './state-strings.js';
