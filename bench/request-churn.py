#!/usr/bin/env python3
import socket, struct, sys, time
# Usage: bench/request-churn.py PID SOCKET_PATH N seat|xdgout|surface|xdg|idle|idlelong ...
# Connects N clients in turn; each binds every global, makes the objects named, syncs and
# hangs up. Prints lockstep's RSS growth per client (BENCHMARKS.md, "Fuzzing").
exec(open(__file__.replace('request-churn.py', 'selection-device-churn.py')).read().split("def main():")[0])
def all_globals(path):
    s=socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(path)
    s.sendall(msg(1,1,2)+msg(1,0,3))
    data=b""; gl=[]
    while True:
        data+=s.recv(65536); at=0; done=False
        while len(data)-at>=8:
            obj,so=struct.unpack_from("=II",data,at); size=so>>16
            if len(data)-at<size: break
            if obj==2 and so&0xffff==0:
                name,ln=struct.unpack_from("=II",data,at+8)
                iface=data[at+16:at+16+ln-1].decode()
                ver=struct.unpack_from("=I",data,at+16+((ln+3)//4)*4)[0]
                gl.append((name,iface,ver))
            if obj==3: done=True
            at+=size
        data=data[at:]
        if done: break
    s.close(); return gl
def client2(path, gl, which):
    s=socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(path)
    ids={}; req=msg(1,1,2); oid=3
    for name,iface,ver in gl:
        req+=msg(2,0,name,iface,min(ver,3) if iface in ("wl_seat","wl_output") else 1,oid); ids[iface]=oid; oid+=1
    def new():
        nonlocal oid; oid+=1; return oid-1
    if "seat" in which:
        req+=msg(ids["wl_seat"],0,new())+msg(ids["wl_seat"],1,new())+msg(ids["wl_seat"],2,new())
    if "xdgout" in which:
        req+=msg(ids["zxdg_output_manager_v1"],1,new(),ids["wl_output"])
    if "surface" in which:
        sid=new(); req+=msg(ids["wl_compositor"],0,sid)
        req+=msg(sid,3,new())  # frame callback
        req+=msg(sid,6)        # commit
    if "xdg" in which:
        sid=new(); req+=msg(ids["wl_compositor"],0,sid)
        xs=new(); req+=msg(ids["xdg_wm_base"],2,xs,sid)
        tl=new(); req+=msg(xs,1,tl)
        req+=msg(sid,6)
    if "idle" in which:
        req+=msg(ids["ext_idle_notifier_v1"],1,new(),1000,ids["wl_seat"])
    if "idlelong" in which:  # a timeout that never fires while the benchmark runs (49 days)
        req+=msg(ids["ext_idle_notifier_v1"],1,new(),0xFFFFFFFF,ids["wl_seat"])
    if "fts" in which:
        pass
    req+=msg(1,0,oid)
    s.sendall(req); data=b""
    while True:
        c=s.recv(65536)
        if not c: break
        data+=c
        if struct.pack("=II",oid,(12<<16)) in data: break
    s.close()
pid=int(sys.argv[1]); path=sys.argv[2]; n=int(sys.argv[3]); which=set(sys.argv[4:])
gl=all_globals(path)
for _ in range(300): client2(path,gl,which)
time.sleep(0.5); b=rss_kib(pid); t=time.time()
for _ in range(n): client2(path,gl,which)
time.sleep(1); a=rss_kib(pid)
print(f"{which}: {n} clients: {b} -> {a} KiB, {(a-b)*1024/n:.1f} B/client, {time.time()-t:.0f}s")
