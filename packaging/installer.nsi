; Victor GUI installer (NSIS 3, Modern UI 2). Built by `python packaging/build.py installer`,
; which passes the defines below; the script also compiles on Linux (Debian's `nsis`).
;
; Per user, no admin prompt: RequestExecutionLevel user, default folder
; %LOCALAPPDATA%\Programs\Victor GUI, HKCU keys only. The folder is choosable (directory page,
; or /D=C:\path on the command line, which must come last and is not quoted: the NSIS rule).
; Silent: /S. Options: /DESKTOP adds the desktop shortcut in a silent install.
; Uninstaller: /S is silent and keeps user data; /REMOVEDATA also removes it.
;
; User data (chats, settings, logs) lives in %LOCALAPPDATA%\victor_gui and %APPDATA%\victor_gui
; (platformdirs), never in the install folder, so upgrades and uninstalls leave it alone unless
; the user asks.
;
; Upgrade in place: running the new installer over an old install first closes a running
; instance (see CloseApp: a polite taskkill, up to 10 s of waiting, then taskkill /F), then
; removes the old bundle's _internal\ folder so no library of the old version lingers.
;
; Required defines: VERSION (text, e.g. 0.2.0rc1), VERSION_QUAD (a.b.c.d), PAYLOAD_DIR (the
; PyInstaller one-folder bundle), OUT_FILE. Optional: ICON (defaults to resources\icon.ico).

Unicode true
ManifestDPIAware true
Target amd64-unicode

!ifndef VERSION
  !error "define VERSION (-DVERSION=0.1.0)"
!endif
!ifndef VERSION_QUAD
  !error "define VERSION_QUAD (-DVERSION_QUAD=0.1.0.0)"
!endif
!ifndef PAYLOAD_DIR
  !error "define PAYLOAD_DIR (the one-folder bundle)"
!endif
!ifndef OUT_FILE
  !error "define OUT_FILE (the installer to write)"
!endif
!ifndef ICON
  ; Relative to this script: makensis works in the script's folder (unless -NOCD). Forward
  ; slashes so that makensis on Linux reads it too.
  !define ICON "../resources/icon.ico"
!endif

!define APP_NAME "Victor GUI"
!define PUBLISHER "Victor GUI contributors"
!define EXE_NAME "victor-gui.exe"
!define CLI_EXE_NAME "victor-gui-cli.exe"
!define APP_KEY "Software\Victor GUI"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\VictorGUI"
!define DATA_DIR_NAME "victor_gui"
; Per-user App Paths entry: Win+R, Start-menu search and ShellExecute find `victor-gui` without
; the folder on PATH (a per-user install cannot edit the system PATH, and editing the user PATH
; from NSIS risks truncating it).
!define APP_PATHS_KEY "Software\Microsoft\Windows\CurrentVersion\App Paths\${EXE_NAME}"

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"
!include "Sections.nsh"

Name "${APP_NAME}"
OutFile "${OUT_FILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${APP_KEY}" "InstallDir"
SetCompressor /SOLID lzma
BrandingText "${APP_NAME} ${VERSION}"

VIProductVersion "${VERSION_QUAD}"
VIFileVersion "${VERSION_QUAD}"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "${APP_NAME} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "${PUBLISHER}, Apache-2.0"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\${EXE_NAME}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME}"

!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH

!define MUI_COMPONENTSPAGE_TEXT_TOP "Your chats, settings and logs are kept unless you tick the box below."
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

; Close running copies of one exe (its name on the stack) before files are replaced or removed.
; `taskkill /IM` without /F asks politely (WM_CLOSE to its windows, so Qt shuts down normally and
; saves its state); it exits 0 while a copy runs and 128 once none is left, so the same call is
; the probe, every 0.5 s. After 10 s, `taskkill /F`. Neither tasklist nor a mutex is used:
; tasklist output is not stable across Windows versions (and empty under Wine), and a mutex
; would need the app's cooperation. A non-admin taskkill cannot touch other users' copies; it
; then exits 1 and the wait ends at once.
!macro CLOSE_APP_FUNC prefix
Function ${prefix}CloseApp
  Exch $R0
  Push $R2
  Push $R3
  StrCpy $R3 0
  ${Do}
    nsExec::Exec '"$SYSDIR\taskkill.exe" /IM "$R0"'
    Pop $R2
    ${If} $R2 != 0
      ${Break}
    ${EndIf}
    ${If} $R3 >= 20
      DetailPrint "$R0 did not close within 10 s; ending it"
      nsExec::Exec '"$SYSDIR\taskkill.exe" /F /IM "$R0"'
      Pop $R2
      Sleep 1000
      ${Break}
    ${EndIf}
    Sleep 500
    IntOp $R3 $R3 + 1
  ${Loop}
  Pop $R3
  Pop $R2
  Pop $R0
FunctionEnd
!macroend
!insertmacro CLOSE_APP_FUNC ""
!insertmacro CLOSE_APP_FUNC "un."

; Stop the engines running from the install folder: a llama-server kept running after the app
; closed holds _internal\engines\llama-server\llama-server.exe open, and Windows refuses to
; replace or delete a running exe, so the upgrade or uninstall would leave a broken folder. The
; installed CLI knows which processes are ours (their exe is inside $INSTDIR) and leaves a
; llama-server the user runs from elsewhere alone; taskkill /IM would end those too. A fresh
; folder has no CLI yet (nothing of ours can run from it); an old CLI without `engine stop`
; prints its usage and changes nothing.
!macro STOP_ENGINES_FUNC prefix
Function ${prefix}StopEngines
  Push $R2
  ${If} ${FileExists} "$INSTDIR\${CLI_EXE_NAME}"
    nsExec::ExecToLog '"$INSTDIR\${CLI_EXE_NAME}" engine stop --folder "$INSTDIR"'
    Pop $R2
  ${EndIf}
  Pop $R2
FunctionEnd
!macroend
!insertmacro STOP_ENGINES_FUNC ""
!insertmacro STOP_ENGINES_FUNC "un."

Section "!${APP_NAME}" SecApp
  SectionIn RO
  Call StopEngines
  Push "${EXE_NAME}"
  Call CloseApp
  Push "${CLI_EXE_NAME}"
  Call CloseApp
  ; Only an earlier install of ours (its exe beside it) has its _internal\ removed, so picking
  ; a folder that holds another program's files never deletes them.
  ${If} ${FileExists} "$INSTDIR\${EXE_NAME}"
  ${AndIf} ${FileExists} "$INSTDIR\_internal\*.*"
    RMDir /r "$INSTDIR\_internal"
  ${EndIf}
  SetOutPath "$INSTDIR"
  File /r "${PAYLOAD_DIR}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  WriteRegStr HKCU "${APP_KEY}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${APP_PATHS_KEY}" "" "$INSTDIR\${EXE_NAME}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\${EXE_NAME}"
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" "$0"
SectionEnd

Section "Start menu shortcut" SecStartMenu
  CreateShortcut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\${EXE_NAME}" "" "$INSTDIR\${EXE_NAME}" 0
SectionEnd

Section /o "Desktop shortcut" SecDesktop
  CreateShortcut "$DESKTOP\${APP_NAME}.lnk" "$INSTDIR\${EXE_NAME}" "" "$INSTDIR\${EXE_NAME}" 0
SectionEnd

Function .onInit
  ; An upgrade keeps the desktop shortcut the user chose last time; /DESKTOP asks for it.
  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/DESKTOP" $1
  ${IfNot} ${Errors}
    !insertmacro SelectSection ${SecDesktop}
  ${ElseIf} ${FileExists} "$DESKTOP\${APP_NAME}.lnk"
    !insertmacro SelectSection ${SecDesktop}
  ${EndIf}
FunctionEnd

Section "un.${APP_NAME}" UnSecApp
  SectionIn RO
  Call un.StopEngines
  Push "${EXE_NAME}"
  Call un.CloseApp
  Push "${CLI_EXE_NAME}"
  Call un.CloseApp
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  Delete "$DESKTOP\${APP_NAME}.lnk"
  ; Only what the installer put there: a recursive delete of a folder the user chose could take
  ; their own files with it. RMDir without /r removes the folder only when it is empty.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${EXE_NAME}"
  Delete "$INSTDIR\${CLI_EXE_NAME}"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINST_KEY}"
  DeleteRegKey HKCU "${APP_KEY}"
  DeleteRegKey HKCU "${APP_PATHS_KEY}"
SectionEnd

Section /o "un.Remove my data (chats, settings, logs)" UnSecData
  RMDir /r "$LOCALAPPDATA\${DATA_DIR_NAME}"
  RMDir /r "$APPDATA\${DATA_DIR_NAME}"
SectionEnd

Function un.onInit
  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/REMOVEDATA" $1
  ${IfNot} ${Errors}
    !insertmacro SelectSection ${UnSecData}
  ${EndIf}
FunctionEnd
