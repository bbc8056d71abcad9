import Foundation

/// The HTTP status `url` answers now (curl, as an operator would check), or nil when nothing answers in
/// `maxTime` seconds.
public func httpStatus(_ url: String, maxTime: Int) async -> Int? {
    guard
        let result = try? await ProcessRunner.run(
            "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "\(maxTime)", url],
            timeout: .seconds(maxTime + 10))
    else { return nil }
    return Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).flatMap { $0 == 0 ? nil : $0 }
}
