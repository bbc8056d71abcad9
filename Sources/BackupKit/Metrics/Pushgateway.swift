import BackupCore
import BackupInterop
import Foundation

/// A Prometheus Pushgateway (PUSHGATEWAY_URL) a job PUTs its run's metrics to, the same families it published
/// in the store.
///
/// The grouping key is the job alone (`/metrics/job/contingency_<job>`), no `instance`: a CronJob's pod, and so
/// its host name, is new at every run, and a group per pod would pile up in the gateway for ever, each keeping
/// the counters of its one run (the Pushgateway's documented pitfall). The counters already add up every
/// runner's runs (`MetricsFile` continues them from the store), so one group per job is the whole truth, and
/// each PUT replaces the previous run's. The URL may carry basic-auth credentials, which libcurl sends; it is
/// only ever shown as `redacted`.
public struct Pushgateway: Sendable {
    public let url: String
    /// The whole budget of one push: a gateway that does not answer must not hold a job up.
    public var timeoutSeconds: Double = 5

    public init(url: String) { self.url = url }

    /// The group's URL: the gateway's (any path prefix kept) followed by `/metrics/job/contingency_<job>`.
    public func groupURL(job: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        components.percentEncodedPath = path + "/metrics/job/contingency_" + job
        return components.string ?? url
    }

    /// For logs: the URL without its credentials (and without any query).
    public var redacted: String { CurlEasy.redacted(url) }

    /// Whether the URL carries basic-auth credentials over plain http://, where anyone on the way reads them.
    /// Not refused: a gateway inside a cluster's own network is often plain http; the job warns instead.
    public var sendsCredentialsInClear: Bool {
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "http" else { return false }
        return !(components.user ?? "").isEmpty || !(components.password ?? "").isEmpty
    }

    /// The families as pushed: without a `job` label of their own (none of the jobs' files has one; a file
    /// another writer left in the store might), which the gateway would overwrite with the grouping key's and
    /// client libraries refuse to push.
    public static func pushable(_ families: [MetricFamily]) -> [MetricFamily] {
        families.map { family in
            var family = family
            family.samples = family.samples.map { sample in
                var sample = sample
                sample.labels.removeAll { $0.name == "job" }
                return sample
            }
            return family
        }
    }

    /// PUTs `text` (the text format, 0.0.4) to the job's group, replacing what the job pushed before. Throws a
    /// `ContingencyError` that names the gateway without credentials when no 2xx answer came.
    public func push(_ text: String, job: String) throws {
        var request = HTTPRequest(
            method: "PUT", url: groupURL(job: job),
            headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
            body: Array(text.utf8))
        request.timeout = timeoutSeconds
        request.connectTimeout = timeoutSeconds
        request.bodyLimit = 4 * 1024
        request.userAgent = "contingency"
        let response: HTTPResponse
        do {
            response = try CurlEasy().perform(request)
        } catch let error as CurlTransportError {
            throw ContingencyError.failed("the push to the Pushgateway \(redacted) failed: \(scrubbed(error.message))")
        }
        guard (200..<300).contains(response.status) else {
            let body = String(decoding: response.body.prefix(300), as: UTF8.self)
                .split(whereSeparator: \.isNewline).joined(separator: " ")
            throw ContingencyError.failed(
                "the Pushgateway \(redacted) answered HTTP \(response.status) to the push\(body.isEmpty ? "" : ": \(scrubbed(body))")",
                hint: response.status == 401 || response.status == 403
                    ? "check the credentials in PUSHGATEWAY_URL (user:password@host)" : nil)
        }
    }

    /// `text` with the URL's user name and password blanked, should libcurl or the gateway ever repeat them.
    private func scrubbed(_ text: String) -> String {
        guard let components = URLComponents(string: url) else { return text }
        let secrets = [
            components.percentEncodedPassword, components.password, components.percentEncodedUser, components.user,
        ]
        return secrets.compactMap { $0 }.filter { $0.count >= 3 }.reduce(text) {
            $0.replacingOccurrences(of: $1, with: "…")
        }
    }
}
