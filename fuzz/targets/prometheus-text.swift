// libFuzzer target: Prometheus text files the jobs publish in the store (`.contingency/metrics/<job>.prom`),
// which the sidecar parses, merges with its own registry and serves.
import BackupCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPrometheusText(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let families = try? PrometheusText.parse(text) else { return 0 }
    // What is read is served: its rendering reads back as the same scrape, and merging it with itself changes
    // nothing (every series is already there once).
    let rendered = PrometheusText.render(PrometheusText.merge([families]))
    guard let again = try? PrometheusText.parse(rendered) else { preconditionFailure("the rendering does not parse:\n\(rendered)") }
    precondition(PrometheusText.render(again) == rendered, "the rendering changes when read back:\n\(rendered)")
    precondition(PrometheusText.render(PrometheusText.merge([again, again])) == rendered, "merging a scrape with itself changes it")
    return 0
}
