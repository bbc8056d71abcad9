import Foundation

/// Where the jobs' run metrics go besides the store (`.contingency/metrics/<job>.prom`): a Prometheus
/// Pushgateway. The URL is a secret: it may carry basic-auth credentials (`https://user:password@host`).
extension Settings {
    public static let pushgatewayURL = Setting(
        "PUSHGATEWAY_URL", secret: true,
        "Prometheus Pushgateway (http(s)://[user:password@]host:port) each job also PUTs its run's metrics to, as job contingency_<job> (backup, cleanup, drill, rollback); a push that fails is a warning, never a failed job"
    )
}

/// The Pushgateway's URL, checked.
public enum PushgatewaySettings {
    /// PUSHGATEWAY_URL, or nil when unset: an http(s) URL with a host, with or without credentials and a path
    /// prefix (a gateway behind a reverse proxy), without query or fragment (the job's path is appended to it).
    /// The error names the variable and never the value, which may hold a password.
    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> String? {
        guard let raw = try values.nonEmpty(Settings.pushgatewayURL) else { return nil }
        let url = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
            components.query == nil, components.fragment == nil
        else {
            throw .configuration(
                "PUSHGATEWAY_URL is not an http:// or https:// URL with a host and without query (its value is a secret and not shown)",
                hint:
                    "give the gateway's base URL, e.g. http://pushgateway:9091 or https://user:password@push.example.com, or unset PUSHGATEWAY_URL"
            )
        }
        return url
    }
}
