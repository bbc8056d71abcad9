/// What the admin API needs beyond the sidecar's configuration: its token, how long it waits, and which proxies
/// it believes.
public struct APIConfiguration: Sendable, Equatable {
    /// nil: the API is disabled (every `/api` route answers 503), never open.
    public var token: String?
    public var backupWaitSeconds: Int
    public var rollbackWaitSeconds: Int
    public var trustedProxies: [IPAddressRange]
    /// Wrong tokens a client may send per minute before 429.
    public var tokenAttempts: Int

    public init(
        token: String?, backupWaitSeconds: Int = 600, rollbackWaitSeconds: Int = 900,
        trustedProxies: [IPAddressRange] = [], tokenAttempts: Int = 10
    ) {
        self.token = token
        self.tokenAttempts = tokenAttempts
        self.backupWaitSeconds = backupWaitSeconds
        self.rollbackWaitSeconds = rollbackWaitSeconds
        self.trustedProxies = trustedProxies
    }

    public static let settings: [Setting] = [
        Settings.apiAdminToken, Settings.apiBackupWait, Settings.apiRollbackWait, Settings.apiTokenAttempts,
        Settings.trustedProxies,
    ]

    /// The smallest token accepted: a short one is guessed long before the brake on wrong tokens matters.
    public static let minimumTokenLength = 16

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> APIConfiguration {
        let token = try values.nonEmpty(Settings.apiAdminToken)
        if let token {
            guard token.count >= minimumTokenLength else {
                throw .configuration(
                    "API_ADMIN_TOKEN is shorter than \(minimumTokenLength) characters",
                    hint: "make one with: openssl rand -hex 32")
            }
            guard token.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline && $0 != "\0" }) else {
                throw .configuration(
                    "API_ADMIN_TOKEN holds spaces or characters other than ASCII: no HTTP client sends such a header as written",
                    hint: "make one with: openssl rand -hex 32")
            }
        }
        var proxies: [IPAddressRange] = []
        if let raw = try values.nonEmpty(Settings.trustedProxies) {
            switch IPAddressRange.parseList(raw) {
            case .success(let ranges): proxies = ranges
            case .failure(let invalid):
                throw .configuration(
                    "TRUSTED_PROXIES: \(invalid.text.prefix(100)) is not an IP address or a CIDR range",
                    hint: "write addresses or ranges separated by commas, e.g. 10.0.0.0/8,fd00::/8,127.0.0.1")
            }
        }
        return APIConfiguration(
            token: token, backupWaitSeconds: try values.duration(Settings.apiBackupWait),
            rollbackWaitSeconds: try values.duration(Settings.apiRollbackWait), trustedProxies: proxies,
            tokenAttempts: try values.integer(Settings.apiTokenAttempts, in: 1...1_000_000) ?? 10)
    }
}
