// libFuzzer target: manifests and metadata.json, as read from the store and from an archive.
import BackupCore
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let json = Data(UnsafeBufferPointer(start: data, count: size))
    if let manifest = try? ContingencyJSON.decoder().decode(Manifest.self, from: json) {
        // What readers rely on: every figure in range, so that sums and doublings cannot overflow.
        let range = 0...Manifest.maximumFigure
        precondition(range.contains(manifest.archive.size))
        precondition(manifest.metadata.members.allSatisfy { range.contains($0.size) })
        precondition(manifest.metadata.uploads.map { range.contains($0.bytes) && $0.files >= 0 } ?? true)
        _ = manifest.archive.size * 2 + (manifest.metadata.uploads?.bytes ?? 0)
        // The pre-restore checks read the versions it records.
        _ = PostgresVersion.parse(toolVersionLine: manifest.metadata.pgDumpVersion)
        _ = PostgresVersion.parse(toolVersionLine: manifest.metadata.serverVersion)
        // What writers do with it (a drill records its result): encoded, it reads back and encodes to the same
        // bytes. (Not always to the value read: Foundation's ISO 8601 decoding takes fractional seconds, which the
        // encoding drops.)
        let encoded = try! ContingencyJSON.encoder().encode(manifest)
        let again = try! ContingencyJSON.decoder().decode(Manifest.self, from: encoded)
        precondition(try! ContingencyJSON.encoder().encode(again) == encoded, "the encoding is not stable")
    }
    if let metadata = try? ContingencyJSON.decoder().decode(BackupMetadata.self, from: json) {
        _ = metadata.member(named: ArchiveLayout.databaseDump)
        _ = PostgresVersion.parse(toolVersionLine: metadata.pgDumpVersion)
        let encoded = try! ContingencyJSON.encoder().encode(metadata)
        let again = try! ContingencyJSON.decoder().decode(BackupMetadata.self, from: encoded)
        precondition(try! ContingencyJSON.encoder().encode(again) == encoded, "the encoding is not stable")
    }
    return 0
}
