<#
.SYNOPSIS
  Start the fieldapp field server at boot on Windows, and put a "fieldapp" shortcut on the desktop.

.DESCRIPTION
  Registers a scheduled task "fieldapp" that starts at boot (before anyone logs in), runs as the
  built-in LocalService account, keeps running on battery, and starts fieldapp again 5 seconds after
  it stops. Opens the HTTPS port to the post's private network in Windows Firewall. Step by step:
  docs/operations.md, "Running as a service".

  Run in PowerShell as Administrator:
    powershell -ExecutionPolicy Bypass -File deploy\windows\fieldapp-service.ps1 `
      -Fieldapp C:\fieldapp\.venv\Scripts\fieldapp.exe -Instance C:\fieldapp\instance
  Remove it again:
    powershell -ExecutionPolicy Bypass -File deploy\windows\fieldapp-service.ps1 -Uninstall
#>
param(
    [string]$Fieldapp = "C:\fieldapp\.venv\Scripts\fieldapp.exe",
    [string]$Instance = "C:\fieldapp\instance",
    [int]$Port = 8443,
    [switch]$Uninstall,
    [switch]$Run  # used by the task itself: serve, and serve again whenever fieldapp stops
)
$ErrorActionPreference = "Stop"
$TaskName = "fieldapp"
$RuleName = "fieldapp (HTTPS)"

if ($Run) {
    while ($true) {
        & $Fieldapp --instance $Instance serve --https --port $Port
        Start-Sleep -Seconds 5
    }
}

if ($Uninstall) {
    Stop-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
    Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false -ErrorAction SilentlyContinue
    Remove-NetFirewallRule -DisplayName $RuleName -ErrorAction SilentlyContinue
    Write-Host "fieldapp no longer starts at boot. The instance folder $Instance is kept."
    return
}

if (-not (Test-Path $Fieldapp)) { throw "fieldapp is not installed at $Fieldapp" }
if (-not (Test-Path (Join-Path $Instance "fieldapp.toml"))) {
    throw "No instance at ${Instance}: run `"$Fieldapp --instance $Instance init`" first"
}

# LocalService has few rights: give it the instance folder (configuration, database, logs).
icacls $Instance /grant "NT AUTHORITY\LocalService:(OI)(CI)M" /T /Q | Out-Null

$script = $MyInvocation.MyCommand.Path
$arguments = "-NoProfile -ExecutionPolicy Bypass -WindowStyle Hidden -File `"$script`" -Run " +
             "-Fieldapp `"$Fieldapp`" -Instance `"$Instance`" -Port $Port"
$action = New-ScheduledTaskAction -Execute "powershell.exe" -Argument $arguments -WorkingDirectory $Instance
$trigger = New-ScheduledTaskTrigger -AtStartup
$principal = New-ScheduledTaskPrincipal -UserId "NT AUTHORITY\LocalService" -LogonType ServiceAccount
$settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
    -StartWhenAvailable -ExecutionTimeLimit ([TimeSpan]::Zero) -MultipleInstances IgnoreNew
Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Principal $principal `
    -Settings $settings -Description "fieldapp field server (docs/operations.md)" -Force | Out-Null

Remove-NetFirewallRule -DisplayName $RuleName -ErrorAction SilentlyContinue
New-NetFirewallRule -DisplayName $RuleName -Direction Inbound -Protocol TCP -LocalPort $Port `
    -Profile Private -Action Allow | Out-Null

# A desktop shortcut for everyone: `fieldapp open` opens the app in the browser.
$desktop = [Environment]::GetFolderPath("CommonDesktopDirectory")
$link = (New-Object -ComObject WScript.Shell).CreateShortcut((Join-Path $desktop "fieldapp.lnk"))
$link.TargetPath = $Fieldapp
$link.Arguments = "--instance `"$Instance`" open --port $Port"
$link.WindowStyle = 7  # minimised: only the browser shows
$link.Save()

Start-ScheduledTask -TaskName $TaskName
Write-Host "fieldapp starts at boot and is starting now: https://localhost:$Port/"
Write-Host "Check it with: $Fieldapp --instance $Instance doctor"
