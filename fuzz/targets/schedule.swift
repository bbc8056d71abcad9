// libFuzzer target: schedules (BACKUP_SCHEDULE, CLEANUP_SCHEDULE…): cron lines, macros, intervals.
import BackupCore
import Foundation

private let instants = [0, 1_736_951_400, 4_107_542_400, -62_135_596_800].map { Date(timeIntervalSince1970: $0) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSchedule(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = Schedule.parseInterval(text)
    _ = try? CronExpression(text)
    guard let schedule = try? Schedule.parse(text) else { return 0 }
    // Its description is what the logs print and `parse` reads back: the same schedule.
    precondition((try? Schedule.parse(schedule.description)) == schedule, "description does not parse back")
    for instant in instants {
        let next = schedule.nextFire(after: instant)
        precondition(next > instant, "the next run is not after now")
    }
    return 0
}
