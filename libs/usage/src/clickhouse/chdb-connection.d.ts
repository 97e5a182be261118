// chdb publishes `chdb/connection` through package exports, which the repository's node10 module
// resolution does not read; this points the import at the same declarations.
declare module 'chdb/connection' {
  export * from 'chdb/dist/connection/index';
}
