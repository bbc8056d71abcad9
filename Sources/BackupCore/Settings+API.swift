/// The admin API's variables (health-sidecar --loop serves it).
extension Settings {
    public static let apiAdminToken = Setting(
        "API_ADMIN_TOKEN", secret: true,
        "The admin API's token, sent by clients as X-API-Token (openssl rand -hex 32 makes one); unset: the API answers 503 and stays closed")
    public static let apiBackupWait = Setting(
        "API_BACKUP_WAIT", default: "10m",
        "POST /api/backups: how long it waits for another backup or restore to free the store before answering 409")
    public static let apiRollbackWait = Setting(
        "API_ROLLBACK_WAIT", default: "15m",
        "POST /api/backups/rollback/auto: how long it waits for the rollback to end before answering with its request id")
    public static let apiTokenAttempts = Setting(
        "API_TOKEN_ATTEMPTS", default: "10",
        "Wrong X-API-Token values one client may send within a minute; beyond, its requests are refused (429) until the minute has passed")
    public static let trustedProxies = Setting(
        "TRUSTED_PROXIES",
        "Addresses or CIDR ranges (comma-separated) of reverse proxies whose X-Forwarded-For names the client, for the API's log lines and its brake on wrong tokens")
}
