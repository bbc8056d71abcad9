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
        // What writers do with it (a drill records its result): encoded again, it reads back the same.
        let encoded = try! ContingencyJSON.encoder().encode(manifest)
        precondition(try! ContingencyJSON.decoder().decode(Manifest.self, from: encoded) == manifest)
    }
    if let metadata = try? ContingencyJSON.decoder().decode(BackupMetadata.self, from: json) {
        _ = metadata.member(named: ArchiveLayout.databaseDump)
        let encoded = try! ContingencyJSON.encoder().encode(metadata)
        precondition(try! ContingencyJSON.decoder().decode(BackupMetadata.self, from: encoded) == metadata)
    }
    return 0
}
