import BackupCore
import Testing

@Suite("Admin API configuration")
struct APIConfigurationTests {
    static func values(_ environment: [String: String], files: [String: String] = [:]) -> ConfigurationValues {
        ConfigurationValues(environment: environment) { path in
            guard let text = files[path] else { throw APIConfigurationTestError() }
            return text
        }
    }

    struct APIConfigurationTestError: Error {}

    @Test(
        "addresses and CIDR ranges: what is in, what is out",
        arguments: [
            ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.7", "192.168.1.7", true), ("192.168.1.7", "192.168.1.8", false),
            ("192.168.1.0/31", "192.168.1.1", true), ("192.168.1.0/31", "192.168.1.2", false),
            ("0.0.0.0/0", "8.8.8.8", true), ("0.0.0.0/0", "::1", false),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),  // IPv4 mapped into IPv6, as a dual-stack socket reports it
            ("fd00::/8", "fd12:3456::1", true), ("fd00::/8", "fe80::1", false),
            ("::1", "::1", true), ("::1", "0:0:0:0:0:0:0:1", true), ("::1", "127.0.0.1", false),
            ("2001:db8::/32", "[2001:db8:1::5]", true), ("2001:db8::/32", "2001:db8::1%eth0", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("10.0.0.0/8", "10.0.0", false), ("10.0.0.0/8", "010.0.0.1", false), ("10.0.0.0/8", "10.0.0.256", false),
            ("10.0.0.0/8", "", false), ("10.0.0.0/8", "10.0.0.1 ", false), ("fd00::/8", "fd00:::1", false),
            ("fd00::/8", "fd00::1::2", false), ("fd00::/8", "fd00:12345::1", false),
        ])
    func contains(range: String, address: String, inside: Bool) throws {
        let parsed = try #require(IPAddressRange(range))
        #expect(parsed.contains(address) == inside, "\(range) ∋ \(address)")
    }

    @Test(
        "what is not a range",
        arguments: ["", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "/8", "fd00::/129", "10.0.0.0/8/8", "host.example",
            "1.2.3.4.5", "10.0.0.0/٣"])
    func invalid(text: String) {
        #expect(IPAddressRange(text) == nil, "\(text)")
    }

    @Test("host bits are cleared: 10.1.2.3/8 is 10.0.0.0/8")
    func masking() throws {
        #expect(try #require(IPAddressRange("10.1.2.3/8")).description == "10.0.0.0/8")
        #expect(try #require(IPAddressRange("fd12::1/16")).description == "fd12:0:0:0:0:0:0:0/16")
    }

    @Test("unset token: the API is disabled; a token from API_ADMIN_TOKEN_FILE, its newline dropped")
    func token() throws {
        #expect(try APIConfiguration.load(Self.values([:])).token == nil)
        let fromFile = try APIConfiguration.load(
            Self.values(["API_ADMIN_TOKEN_FILE": "/run/secrets/token"], files: ["/run/secrets/token": "0123456789abcdef0123\n"]))
        #expect(fromFile.token == "0123456789abcdef0123")
        let defaults = try APIConfiguration.load(Self.values(["API_ADMIN_TOKEN": "0123456789abcdef"]))
        #expect(defaults.backupWaitSeconds == 600 && defaults.rollbackWaitSeconds == 900 && defaults.trustedProxies.isEmpty)
    }

    @Test(
        "refused: a short token, one with spaces or beyond ASCII, a proxy list with a bad entry",
        arguments: [
            (["API_ADMIN_TOKEN": "short"], "shorter than 16 characters"),
            (["API_ADMIN_TOKEN": "0123456789 abcdef0123"], "spaces or characters other than ASCII"),
            (["API_ADMIN_TOKEN": "0123456789abcdéf0123"], "spaces or characters other than ASCII"),
            (["TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"], "TRUSTED_PROXIES: proxy.internal is not"),
            (["API_BACKUP_WAIT": "soon"], "API_BACKUP_WAIT=soon is not a duration"),
        ])
    func refused(environment: [String: String], message: String) {
        #expect {
            try APIConfiguration.load(Self.values(environment))
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("TRUSTED_PROXIES takes commas and spaces")
    func proxies() throws {
        let loaded = try APIConfiguration.load(Self.values(["TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1 fd00::/8"]))
        #expect(loaded.trustedProxies.map(\.description) == ["10.0.0.0/8", "127.0.0.1/32", "fd00:0:0:0:0:0:0:0/8"])
    }
}
