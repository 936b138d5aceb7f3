// sanlock's wire protocol in one import: header, payload structs, command table and daemon-side
// framing, client-side reply decoding, resource/lockspace strings. See each file's header.
// Layer order: storage → ondisk → lease → protocol → daemon → cli/client. The wire format is a
// pure lower layer used by both the daemon and clients: protocol imports only ../codes.js.
export * from './header.js';
export * from './structs.js';
export * from './commands.js';
export * from './replies.js';
export * from './state-strings.js';
export * from './request-structs.js';
