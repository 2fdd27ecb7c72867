package db

// MigrateLockKey is migrateLockKey for the external tests.
const MigrateLockKey = migrateLockKey
